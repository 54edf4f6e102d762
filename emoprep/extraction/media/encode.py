"""Writing small media files: what the demo corpus and the test-tree builders need.

Kept beside the decoders so that both directions use PyAV the same way; emoprep itself never
re-encodes a user's media.
"""

from __future__ import annotations

import itertools
import wave
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """PCM16 WAV from float samples in [-1, 1], shape ``(n,)`` or ``(n, channels)``."""
    data = samples[:, None] if samples.ndim == 1 else samples
    pcm = np.clip(data * 32767.0, -32768, 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int,
    audio: np.ndarray | None = None,
    audio_rate: int = 44100,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    video_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB uint8 frames (all the same size) and optional ``(channels, n)`` float audio."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(video_codec, rate=fps)
        vs.height, vs.width = first.shape[:2]
        vs.pix_fmt = "yuv420p"
        if video_options:
            vs.options = video_options
        as_ = None
        if audio is not None:
            as_ = out.add_stream(audio_codec, rate=audio_rate)
            as_.layout = "stereo" if audio.shape[0] == 2 else "mono"
        for i, img in enumerate(itertools.chain([first], frames)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if as_ is not None:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio, dtype=np.float32), format="fltp", layout=as_.layout.name
            )
            frame.sample_rate = audio_rate
            frame.pts = 0
            for packet in as_.encode(frame):
                out.mux(packet)
            for packet in as_.encode():
                out.mux(packet)
    return path

