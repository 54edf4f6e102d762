"""Frame sampling: exact timestamps, nearest-frame choice, seek/reuse, regions, downscale, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _visual_media import make_video, read_index, shared_or_skip  # noqa: E402

from emoprep.errors import MediaError
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.media.video import Frame, VideoFrameSource
from emoprep.extraction.records import Utterance

FPS = 25


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "plain": make_video(d / "plain.mp4", n_frames=250, gop=50),
        "sbs": make_video(d / "sbs.mp4", n_frames=30, face_at="left"),
        "tall": make_video(d / "tall.mp4", n_frames=10, size=(640, 480)),
    }


def check_nearest(frames: list[Frame], targets: list[float]) -> None:
    """Each frame is the nearest to its target, its pixels are that frame, its time exact."""
    assert len(frames) == len(targets)
    for f, t in zip(frames, targets):
        assert abs(f.t_s - t) <= 0.5 / FPS + 1e-9
        assert read_index(f.rgb) == round(f.t_s * FPS)
        assert f.t_s == pytest.approx(round(f.t_s * FPS) / FPS, abs=1e-9)  # a real pts, not the target


def test_samples_nearest_frames_at_interval(videos: dict[str, Path]) -> None:
    with VideoFrameSource() as src:
        frames = src.sample(videos["plain"], 0.0, 2.0, 0.5)
        check_nearest(frames, [0.0, 0.5, 1.0, 1.5])
        frames = src.sample(videos["plain"], 2.13, 2.9, 0.2)
        check_nearest(frames, [2.13, 2.33, 2.53, 2.73])
    assert frames[0].rgb.dtype == np.uint8 and frames[0].rgb.shape == (360, 640, 3)


def test_sorted_utterances_reuse_the_decoder(videos: dict[str, Path]) -> None:
    with VideoFrameSource() as src:
        for start in (0.0, 0.7, 1.9, 3.1):  # sorted, close together: decode just goes on
            check_nearest(src.sample(videos["plain"], start, start + 1.0, 0.5), [start, start + 0.5])
        assert (src.opens, src.seeks) == (1, 0)
        # Overlapping segment behind the decode position: one seek, still the right frames.
        check_nearest(src.sample(videos["plain"], 2.5, 3.3, 0.4), [2.5, 2.9])
        assert src.seeks == 1
        # Far ahead (beyond the forward-decode window): seek rather than decode 5 s.
        check_nearest(src.sample(videos["plain"], 9.3, 9.9, 0.5), [9.3, 9.8])
        assert src.seeks == 2 and src.opens == 1


def test_matches_brute_force_decode_from_zero(videos: dict[str, Path]) -> None:
    """Seeking never changes the result: compare with decoding every segment from scratch."""
    rng = np.random.default_rng(0)
    segments = sorted((float(s), float(s + d)) for s, d in zip(rng.uniform(0, 9, 8), rng.uniform(0.1, 2.5, 8)))
    with VideoFrameSource() as src:
        got = [src.sample(videos["plain"], a, b, 0.3) for a, b in segments]
        assert src.seeks >= 1
    with VideoFrameSource() as fresh:
        every = fresh.sample(videos["plain"], 0.0, 10.0, 1 / FPS)  # sequential, no seek
        assert fresh.seeks == 0 and len(every) == 250
    by_t = {f.t_s: f.rgb for f in every}
    for (a, b), frames in zip(segments, got):
        check_nearest(frames, [a + k * 0.3 for k in range(int(np.ceil((b - a) / 0.3 - 1e-9)))])
        for f in frames:
            assert np.array_equal(by_t[f.t_s], f.rgb)


def test_frames_far_from_targets_are_skipped_without_changing_the_picks(tmp_path: Path) -> None:
    """With B-frames, sampling at 2 fps skips decoding most non-reference frames, and still picks
    exactly the frames (times and pixels) that decoding every frame picks."""
    path = make_video(tmp_path / "b.mp4", n_frames=250, gop=250, bframes=3)
    segments = [(0.0, 2.9), (3.3, 6.1), (6.2, 9.0), (1.1, 2.0)]  # the last one seeks back
    with VideoFrameSource() as src:
        got = [src.sample(path, a, b, 0.5) for a, b in segments]
        assert src.seeks == 1
        skipped_some = src.frames_decoded
    with VideoFrameSource() as fresh:
        every = fresh.sample(path, 0.0, 10.0, 1 / FPS)
        assert fresh.frames_decoded == 250
    by_t = {f.t_s: f.rgb for f in every}
    for (a, b), frames in zip(segments, got):
        check_nearest(frames, [a + k * 0.5 for k in range(int(np.ceil((b - a) / 0.5 - 1e-9)))])
        for f in frames:
            assert np.array_equal(by_t[f.t_s], f.rgb)
    # 9 s decoded once plus the seek-back; without skipping that is about 290 frames
    assert skipped_some < 0.8 * 290, skipped_some


def test_regions_cut_halves_and_map_boxes_back(videos: dict[str, Path]) -> None:
    with VideoFrameSource() as src:
        left = src.sample(videos["sbs"], 0.0, 0.5, 0.5, "left")[0]
        right = src.sample(videos["sbs"], 0.0, 0.5, 0.5, "right")[0]
    assert left.rgb.shape == right.rgb.shape == (360, 320, 3)
    assert left.offset_xy == (0, 0) and right.offset_xy == (320, 0)
    assert left.rgb[200:, 80:240].reshape(-1, 3).std(axis=0).max() > 20  # the face is on the left...
    assert right.rgb[100:, :].reshape(-1, 3).std(axis=0).max() < 5  # ...the right half is flat background
    assert right.to_source_box((10, 20, 30, 40)) == (330, 20, 30, 40)
    with pytest.raises(MediaError):
        VideoFrameSource().sample(videos["sbs"], 0.0, 0.5, 0.5, "top")


def test_tall_frames_are_downscaled_and_boxes_scaled_back(videos: dict[str, Path]) -> None:
    with VideoFrameSource(max_height=240) as src:
        f = src.sample(videos["tall"], 0.0, 0.1, 0.5)[0]
    assert f.rgb.shape == (240, 320, 3) and f.scale == pytest.approx(2.0)
    assert f.to_source_box((10, 10, 50, 50)) == pytest.approx((20, 20, 100, 100))
    with VideoFrameSource(max_height=0) as src:
        assert src.sample(videos["tall"], 0.0, 0.1, 0.5)[0].rgb.shape == (480, 640, 3)


def test_segment_past_end_and_bad_files_raise_media_error(videos: dict[str, Path], tmp_path: Path) -> None:
    src = VideoFrameSource()
    with pytest.raises(MediaError) as e:
        src.sample(videos["sbs"], 5.0, 6.0, 0.5)
    assert e.value.stage == "decode_video"
    # The last target past the end is dropped, the earlier ones are kept.
    assert [round(f.t_s * FPS) for f in src.sample(videos["sbs"], 0.9, 1.6, 0.5)] == [22]
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 1000)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(videos["plain"].read_bytes()[: videos["plain"].stat().st_size // 3])
    for bad in (tmp_path / "missing.mp4", junk, truncated):
        with pytest.raises(MediaError) as e:
            src.sample(bad, 0.0, 1.0, 0.5)
        assert e.value.stage == "decode_video"
    with pytest.raises(MediaError):
        src.sample(videos["sbs"], 1.0, 1.0, 0.5)
    src.close()
    assert not src._open


def test_close_then_reuse_reopens(videos: dict[str, Path]) -> None:
    src = VideoFrameSource(max_open=1)
    src.sample(videos["plain"], 0.0, 0.5, 0.5)
    src.sample(videos["sbs"], 0.0, 0.5, 0.5)  # evicts plain (max_open=1)
    assert list(src._open) == [str(videos["sbs"])]
    src.close()
    check_nearest(src.sample(videos["plain"], 1.0, 1.5, 0.5), [1.0])
    assert src.opens == 3
    src.close()


def test_utterance_media_uses_the_shared_source(videos: dict[str, Path]) -> None:
    src = VideoFrameSource()
    u = Utterance("u1", "demo", "sbs", 0.0, 1.0, video_path=str(videos["sbs"]), video_region="right")
    media = UtteranceMedia(u, MediaOptions(frame_interval_s=0.25), src)
    frames = media.frames()
    assert len(frames) == 4 and frames[0].rgb.shape[1] == 320 and media.frames() is frames
    assert src.opens == 1
    src.close()


def test_real_grid_mpeg_seeks_precisely() -> None:
    """MPEG-PS seeks land late (even 'seek to 0'): the source must still return the right frames."""
    path = shared_or_skip("grid", "bbaf2n.mpg")
    with VideoFrameSource() as src:
        ref = src.sample(path, 0.0, 3.0, 0.04)  # every frame, decoded from the start
        got = src.sample(path, 0.3, 1.0, 0.5)  # behind the position: seek
        assert src.seeks >= 1
    by_t = {round(f.t_s, 3): f.rgb for f in ref}
    assert [round(f.t_s, 2) for f in got] in ([0.28, 0.8], [0.32, 0.8])
    for f in got:
        assert np.array_equal(by_t[round(f.t_s, 3)], f.rgb)


def test_real_h264_clip_after_seek_equals_sequential_decode() -> None:
    path = shared_or_skip("faces", "WolfgangLanger_Pexels.mp4")
    with VideoFrameSource() as src:
        seq = src.sample(path, 0.0, 16.0, 0.5)
    with VideoFrameSource() as src:
        late = src.sample(path, 12.0, 14.0, 0.5)
        assert src.seeks == 1
    by_t = {f.t_s: f.rgb for f in seq}
    assert [f.t_s for f in late] == pytest.approx([12.012, 12.513, 13.013, 13.514], abs=1e-3)
    for f in late:
        assert np.array_equal(by_t[f.t_s], f.rgb)
