"""emoprep.extraction.media.audio.decode_audio: seek + cut + resample of one utterance, on generated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _audio_media import SR, media_for, tone, write_audio, write_video_only

from emoprep.errors import MediaError
from emoprep.extraction.media.audio import decode_audio


def _peak_freq(y: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * sr / len(y))


def _onset(y: np.ndarray, thr: float = 0.05) -> int:
    return int(np.argmax(np.abs(y) > thr))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    n = 6 * 48000
    burst = np.zeros(n, dtype=np.float32)
    burst[3 * 48000 :] = tone(700, 3.0, 48000)  # silence, then a tone from exactly 3.000 s
    left, right = tone(440, 6.0, 48000), tone(1000, 6.0, 48000)
    return {
        "wav16": write_audio(d / "mono16.wav", tone(300, 4.0), SR),
        "burst_wav": write_audio(d / "burst.wav", burst, 48000),
        "burst_mp4": write_audio(d / "burst.mp4", burst, 48000, codec="aac"),
        "stereo_wav": write_audio(d / "stereo.wav", np.stack([left, right]), 48000),
        "stereo_mp4": write_audio(d / "stereo.mp4", np.stack([left, right]), 48000, codec="aac"),
        "video_only": write_video_only(d / "video_only.mp4"),
    }


def test_wav_segment_length_rate_and_content(files: dict[str, Path]) -> None:
    y = decode_audio(files["wav16"], 1.25, 2.75, SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == int(1.5 * SR)
    assert abs(_peak_freq(y) - 300) < 2
    assert 0.45 < np.abs(y).max() <= 0.51


@pytest.mark.parametrize("key", ["burst_wav", "burst_mp4"])
def test_seek_lands_on_the_right_sample(files: dict[str, Path], key: str) -> None:
    """A tone that starts at 3.000 s must start 0.5 s into the segment [2.5, 3.5): seek + cut are exact."""
    y = decode_audio(files[key], 2.5, 3.5, SR)
    assert len(y) == SR
    onset_s = _onset(y) / SR
    # wav: sample exact (the resampler's filter spreads the edge by < 1 ms); AAC: encoder delay is
    # compensated by the container, its transient smearing is a few ms at most.
    tol = 0.002 if key.endswith("wav") else 0.006
    assert abs(onset_s - 0.5) < tol, onset_s


def test_segment_far_into_file_equals_decoding_from_zero(files: dict[str, Path]) -> None:
    seeked = decode_audio(files["burst_mp4"], 4.0, 5.0, SR)
    whole = decode_audio(files["burst_mp4"], 0.0, 6.0, SR)
    ref = whole[4 * SR : 5 * SR]
    n = min(len(seeked), len(ref))
    assert n >= SR - 2
    # identical samples up to the resampler's edge effects in the first/last ms
    core = slice(64, n - 64)
    assert np.max(np.abs(seeked[core] - ref[core])) < 1e-3


@pytest.mark.parametrize("key", ["stereo_wav", "stereo_mp4"])
def test_channel_selection(files: dict[str, Path], key: str) -> None:
    left = decode_audio(files[key], 2.0, 3.0, SR, channel=0)
    right = decode_audio(files[key], 2.0, 3.0, SR, channel=1)
    mixed = decode_audio(files[key], 2.0, 3.0, SR, channel=None)
    assert abs(_peak_freq(left) - 440) < 3
    assert abs(_peak_freq(right) - 1000) < 3
    spec = np.abs(np.fft.rfft(mixed))
    k440, k1000 = round(440 * len(mixed) / SR), round(1000 * len(mixed) / SR)
    assert spec[k440] > 0.3 * spec.max() and spec[k1000] > 0.3 * spec.max()  # both channels mixed in
    with pytest.raises(MediaError, match="channel 2"):
        decode_audio(files[key], 2.0, 3.0, SR, channel=2)


def test_segment_past_end_is_cut_and_segment_after_end_fails(files: dict[str, Path]) -> None:
    y = decode_audio(files["wav16"], 3.5, 5.0, SR)  # file is 4.0 s long
    assert abs(len(y) - 0.5 * SR) <= 1
    with pytest.raises(MediaError) as err:
        decode_audio(files["wav16"], 5.0, 6.0, SR)
    assert err.value.stage == "decode_audio" and "outside" in str(err.value)


def test_no_audio_stream(files: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="no audio stream"):
        decode_audio(files["video_only"], 0.0, 0.5, SR)


def test_corrupt_and_missing_files(tmp_path: Path, files: dict[str, Path]) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(MediaError):
        decode_audio(junk, 0.0, 1.0, SR)
    with pytest.raises(MediaError, match="cannot open"):
        decode_audio(tmp_path / "missing.wav", 0.0, 1.0, SR)
    # A truncated mp4 (moov atom at the end is cut off): unreadable, a MediaError not a crash.
    data = files["stereo_mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        decode_audio(cut, 1.0, 2.0, SR)


def test_truncated_wav_keeps_what_decodes(tmp_path: Path, files: dict[str, Path]) -> None:
    data = files["wav16"].read_bytes()  # 4 s; header claims 4 s but only ~2 s remain
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 2 * SR * 2])
    y = decode_audio(cut, 0.5, 1.5, SR)
    assert len(y) == SR
    with pytest.raises(MediaError):
        decode_audio(cut, 3.0, 3.5, SR)


def test_empty_segment_rejected(files: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="empty segment"):
        decode_audio(files["wav16"], 1.0, 1.0, SR)


def test_utterance_media_decodes_once_and_caches_errors(files: dict[str, Path]) -> None:
    media = media_for(files["stereo_wav"], 1.0, 2.0, channel=1)
    a = media.audio()
    assert media.audio() is a  # cached: decoded once for all audio extractors
    assert abs(_peak_freq(a) - 1000) < 3
    bad = media_for(files["video_only"], 0.0, 0.5)
    with pytest.raises(MediaError) as e1:
        bad.audio()
    with pytest.raises(MediaError) as e2:
        bad.audio()
    assert e1.value is e2.value


@pytest.mark.parametrize("clip", ["id2_vcd_swwp2s.mpg", "bbaf2n.mpg"])
def test_mpeg_program_stream_segment_equals_decoding_from_zero(clip: str, shared) -> None:  # noqa: ANN001
    """GRID's MPEG-1/MP2 files: the MP2 decoder cannot start at a seek point; the segment must still
    come out, sample for sample the same as cutting it from a decode of the whole file."""
    path = shared("grid", clip)
    whole = decode_audio(path, 0.0, 2.9)
    part = decode_audio(path, 1.44, 2.21)
    assert part.shape[0] == round(0.77 * SR)
    start = round(1.44 * SR)
    np.testing.assert_allclose(part[100:-100], whole[start + 100 : start + part.shape[0] - 100], atol=1e-4)
