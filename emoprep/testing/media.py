"""Tiny decodable media for tests: tone WAVs and tone-plus-picture videos, written with PyAV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..extraction.media.encode import write_video, write_wav

MEDIA_RATE = 16000
MEDIA_FPS = 10


def _tone(seconds: float, freq: float, rate: int = MEDIA_RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_tone_wav(
    path: Path, seconds: float, freqs: Sequence[float] = (440.0,), rate: int = MEDIA_RATE
) -> Path:
    """PCM16 WAV with one sine tone per channel (distinct tones tell channels apart in tests)."""
    return write_wav(path, np.stack([_tone(seconds, f, rate) for f in freqs], axis=1), rate)


def write_tone_video(
    path: Path,
    seconds: float,
    size: tuple[int, int] = (64, 48),
    halves: bool = False,
    freqs: Sequence[float] = (440.0,),
    fps: int = MEDIA_FPS,
) -> Path:
    """A small H.264 (or MPEG-4 for ``.avi``) video with a tone audio track, written with PyAV.

    Frames are flat colours that change over time; with ``halves=True`` the left and right halves
    differ (red/blue), like IEMOCAP's side-by-side dialog videos, so a region crop can be checked.
    """
    width, height = size
    n_frames = max(1, int(np.ceil(seconds * fps)))

    def frames():  # noqa: ANN202 - a generator of RGB frames
        for i in range(n_frames):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            level = int(40 + 200 * (i / max(1, n_frames - 1)))
            if halves:
                img[:, : width // 2, 0] = level
                img[:, width // 2 :, 2] = level
            else:
                img[:, :, 1] = level
            yield img

    avi = path.suffix.lower() == ".avi"
    audio = np.stack([_tone(seconds, f, MEDIA_RATE) for f in freqs], axis=0)
    return write_video(
        path, frames(), fps, audio, MEDIA_RATE,
        video_codec="mpeg4" if avi else "libx264", audio_codec="pcm_s16le" if avi else "aac",
    )
