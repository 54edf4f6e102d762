"""Generated audio for the acoustic tests: tones, noise and speech-like signals, written with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.records import Utterance

SR = 16000


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def voiced(seconds: float, sr: int = SR, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """Speech-like bursts: harmonic 'vowels' (f0 + 8 harmonics) from 100 to 350 ms of every 400 ms.

    The on/off pattern gives the pitch tracker unvoiced-to-voiced onsets, which DisVoice's BBE/MFCC need.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sr)
    t = np.arange(n) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 9))
    phase = t % 0.4
    gate = ((phase >= 0.1) & (phase < 0.35)).astype(float)
    return (0.3 * x * gate + 0.003 * rng.standard_normal(n)).astype(np.float32)


def write_audio(path: Path, channels: np.ndarray, sr: int = SR, codec: str = "pcm_s16le") -> Path:
    """Encode ``(channels, samples)`` float audio into ``path`` (container from the extension)."""
    import av

    channels = np.atleast_2d(np.asarray(channels, dtype=np.float32))
    layout = {1: "mono", 2: "stereo"}[channels.shape[0]]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        fmt = stream.codec_context.format.name
        if fmt == "s16":  # packed int16
            data = (np.clip(channels, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
        elif fmt == "fltp":
            data = channels
        else:
            raise ValueError(f"unexpected encoder format {fmt}")
        step = 1024
        for i in range(0, data.shape[1] // (channels.shape[0] if fmt == "s16" else 1), step):
            if fmt == "s16":
                block = data[:, i * channels.shape[0] : (i + step) * channels.shape[0]]
            else:
                block = np.ascontiguousarray(data[:, i : i + step])
            frame = av.AudioFrame.from_ndarray(block, format=fmt, layout=layout)
            frame.sample_rate = sr
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_video_only(path: Path, seconds: float = 1.0) -> Path:
    """An mp4 with a video stream and no audio stream."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * 10)):
            img = np.full((48, 64, 3), i * 20 % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def media_for(path: Path, start: float, end: float, channel: int | None = None) -> UtteranceMedia:
    u = Utterance(
        utterance_id="u0", dataset="test", video_id="v0", start_s=start, end_s=end,
        audio_path=str(path), audio_channel=channel,
    )
    return UtteranceMedia(u, MediaOptions(sample_rate=SR))


class ArrayMedia(UtteranceMedia):
    """An UtteranceMedia whose audio is a given array (no file): for extractor unit tests."""

    def __init__(self, audio: np.ndarray, start: float = 0.0) -> None:
        u = Utterance(utterance_id="arr", dataset="test", video_id="v", start_s=start,
                      end_s=start + max(len(audio), 1) / SR)
        super().__init__(u, MediaOptions(sample_rate=SR))
        self._audio = np.asarray(audio, dtype=np.float32)
