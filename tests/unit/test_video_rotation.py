"""Display rotation: frames, face boxes and crops come out as a player shows the video.

Phone recordings store portrait video as sideways pixels plus a display matrix.  Each test writes
such a file itself: the upright frames turned the other way, with the display rotation that turns
them back, and checks that emoprep's frames equal the upright ones.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _visual_media import make_video, read_index

from emoprep.extraction.config import ExtractConfig, VisualConfig
from emoprep.errors import MediaError
from emoprep.extraction.extractors import build_extractor
from emoprep.format.codecs import decode_crop
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.media.video import VideoFrameSource, display_transform
from emoprep.extraction.records import Utterance

FPS = 25


def upright_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def write_rotated(frames: list[np.ndarray], path: Path, degrees: int, fps: int = FPS) -> Path:
    """Store ``frames`` as a phone would: turned by ``-degrees`` (counter-clockwise), with a display
    matrix that turns them back by ``degrees``."""
    import av

    h, w = np.rot90(frames[0], k=-degrees // 90).shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"crf": "12", "bf": "0"}
        stream.set_display_rotation(degrees)
        for i, img in enumerate(frames):
            stored = np.ascontiguousarray(np.rot90(img, k=-degrees // 90))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("rot") / "plain.mp4", n_frames=30)


@pytest.fixture(scope="module")
def rotated(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    d = tmp_path_factory.mktemp("rotated")
    frames = upright_frames(plain)
    return {deg: write_rotated(frames, d / f"rot{deg}.mp4", deg) for deg in (90, 180, 270)}


def visual(**kw: object):
    cfg = ExtractConfig(dataset="demo", modalities=("visual",), visual=replace(VisualConfig(), **kw))
    ex = build_extractor("visual", cfg)
    ex.check()
    return ex


def extract(ex, path: Path, start: float, end: float, interval: float = 0.5) -> dict:
    u = Utterance("u", "demo", "v", start, end, video_path=str(path))
    with VideoFrameSource() as src:
        return ex.extract(UtteranceMedia(u, MediaOptions(frame_interval_s=interval), src))


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_frames_come_out_upright(degrees: int, plain: Path, rotated: dict[int, Path]) -> None:
    with VideoFrameSource() as src:
        ref = src.sample(plain, 0.0, 1.0, 0.2)
        got = src.sample(rotated[degrees], 0.0, 1.0, 0.2)
    assert [f.t_s for f in got] == [f.t_s for f in ref]
    for r, g in zip(ref, got):
        assert g.rgb.shape == r.rgb.shape == (360, 640, 3)  # stored 360 x 640 when turned a quarter
        assert read_index(g.rgb) == read_index(r.rgb)  # the stamp is top-left only when upright
        assert np.abs(g.rgb.astype(int) - r.rgb.astype(int)).mean() < 3
    assert got[0].display == {90: "cclock", 180: "hflip,vflip", 270: "clock"}[degrees]
    assert ref[0].display is None


def test_max_height_bounds_the_displayed_frame(tmp_path: Path) -> None:
    """A portrait recording (stored landscape, turned by the player) is downscaled by its displayed
    height, and boxes map back to the displayed frame's full-size pixels."""
    portrait = [np.ascontiguousarray(np.rot90(f, 1)) for f in upright_frames(make_video(tmp_path / "p.mp4", n_frames=5))]
    path = write_rotated(portrait, tmp_path / "portrait.mp4", -90)  # stored 640 x 360, shown 360 x 640
    with VideoFrameSource(max_height=320) as src:
        f = src.sample(path, 0.0, 0.1, 0.5)[0]
    assert f.rgb.shape == (320, 180, 3) and f.scale == pytest.approx(2.0) and f.display == "clock"
    assert f.to_source_box((10, 20, 30, 40)) == pytest.approx((20, 40, 60, 80))
    import cv2

    small = cv2.resize(portrait[0], (180, 320), interpolation=cv2.INTER_AREA)
    assert np.abs(f.rgb.astype(int) - small.astype(int)).mean() < 4


@pytest.mark.parametrize("degrees", [90, 270])
def test_face_found_with_boxes_and_crops_as_in_the_upright_video(
    degrees: int, plain: Path, rotated: dict[int, Path]
) -> None:
    ex = visual(face_size=112, face_mesh=True)
    ref = extract(ex, plain, 0.0, 1.2)
    got = extract(ex, rotated[degrees], 0.0, 1.2)
    assert ref["face_missing"] == got["face_missing"] == [None, None, None]
    for rb, gb in zip(ref["face_boxes"], got["face_boxes"]):
        assert np.abs(np.subtract(rb, gb)).max() < 6  # displayed-frame pixels, same face
    for rc, gc in zip(ref["face_crops"], got["face_crops"]):
        a, b = decode_crop(rc["bytes"]).astype(int), decode_crop(gc["bytes"]).astype(int)
        assert np.abs(a - b).mean() < 12 < np.abs(np.rot90(a) - b).mean()  # upright, not sideways
    for rm, gm in zip(ref["face_mesh"], got["face_mesh"]):
        d = np.linalg.norm(np.reshape(rm, (-1, 3))[:, :2] - np.reshape(gm, (-1, 3))[:, :2], axis=1)
        assert d.mean() < 4
    assert "display" in ex.describe()["display_rotation"]
    ex.close()


def test_real_clip_recorded_sideways(shared, tmp_path: Path) -> None:
    """A real talking-head clip stored sideways (as a phone held the other way would) gives the
    same face, boxes and upright crops as the clip itself."""
    clip = shared("faces", "single_face.mp4")
    frames = upright_frames(clip)[:30]
    sideways = write_rotated(frames, tmp_path / "sideways.mp4", -90, fps=30)
    ex = visual(face_size=112)
    ref_path = write_rotated(frames, tmp_path / "upright.mp4", 0, fps=30)  # same encoding, no turn
    ref = extract(ex, ref_path, 0.0, 1.0, 0.25)
    got = extract(ex, sideways, 0.0, 1.0, 0.25)
    assert ref["face_missing"] == got["face_missing"] == [None] * 4
    for rb, gb in zip(ref["face_boxes"], got["face_boxes"]):
        assert np.abs(np.subtract(rb, gb)).max() < 6
    for rc, gc in zip(ref["face_crops"], got["face_crops"]):
        a, b = decode_crop(rc["bytes"]).astype(int), decode_crop(gc["bytes"]).astype(int)
        assert np.abs(a - b).mean() < 12 < np.abs(np.rot90(a) - b).mean()  # upright, not sideways
    ex.close()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg command is not installed")
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_same_pixels_as_ffmpeg_autorotate(degrees: int, hflip: bool, tmp_path: Path) -> None:
    """FFmpeg's own autorotation (as ffplay shows the file) is the reference, mirrors included."""
    w, h = 96, 64
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[:, :, 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[4:20, 4:30, 2] = 255
    path = tmp_path / "m.mp4"
    import av

    with av.open(str(path), "w") as out:  # lossless 4:4:4, so any pixel difference is a wrong turn
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt, s.options = w, h, "yuv444p", {"crf": "0"}
        s.set_display_rotation(degrees, hflip=hflip)
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)
    with VideoFrameSource() as src:
        ours = src.sample(path, 0.0, 0.04, 0.5)[0].rgb
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(ours.shape)
    assert len(raw) == ours.size and np.array_equal(ref, ours)


def test_display_transform_decisions() -> None:
    one = 1 << 16
    assert display_transform(None) is None
    assert display_transform((one, 0, 0, 0, one, 0, 0, 0, 1 << 30)) is None
    assert display_transform((0, -one, 0, one, 0, 0, 0, 0, 1 << 30)) == "cclock"  # PyAV's +90
    assert display_transform((0, one, 0, -one, 0, 0, 0, 0, 1 << 30)) == "clock"  # iPhone portrait
    assert display_transform((-one, 0, 0, 0, -one, 0, 0, 0, 1 << 30)) == "hflip,vflip"
    half = int(one * 0.7071)
    with pytest.raises(MediaError, match="not a quarter turn"):
        display_transform((half, -half, 0, half, half, 0, 0, 0, 1 << 30))
