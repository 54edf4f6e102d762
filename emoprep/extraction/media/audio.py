"""Decode one utterance's audio to 16 kHz float32 with PyAV, seeking instead of decoding from 0.

Why seek-and-cut rather than one ffmpeg call per file: an utterance is a few seconds of a recording
that can be many minutes long, and a shard holds utterances of many recordings.  We seek to just
before the segment, decode only the packets that overlap it, convert at the native rate and
resample once with a polyphase filter (deterministic, so reruns give identical bytes).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ...errors import MediaError

SEEK_MARGIN_S = 1.0
"""Seek this far before the start: keyframes of compressed audio may precede the target."""


def _frame_to_float(frame) -> np.ndarray:
    """Return ``(channels, samples)`` float32 in [-1, 1] whatever the frame's sample format."""
    fmt = frame.format
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not fmt.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / 32768.0
    elif arr.dtype == np.int32:
        arr = arr.astype(np.float32) / 2147483648.0
    elif arr.dtype == np.uint8:
        arr = (arr.astype(np.float32) - 128.0) / 128.0
    return np.ascontiguousarray(arr, dtype=np.float32)


def _to_mono(data: np.ndarray, channel: int | None, path: str | Path) -> np.ndarray:
    """Select ``channel`` (or average all) of a ``(channels, samples)`` block, per decoded frame.

    Done frame by frame so that a long multi-channel segment never sits in memory with all channels.
    """
    if channel is None:
        return data.mean(axis=0) if data.shape[0] > 1 else data[0]
    if not 0 <= channel < data.shape[0]:
        raise MediaError("decode_audio", f"{path} has {data.shape[0]} channel(s), channel {channel} requested")
    return data[channel]


def _decode_from(container, stream, seek_s: float | None, end_s: float, channel: int | None, path):
    """Decode mono samples from ``seek_s`` (None: the start) until past ``end_s``.

    Returns ``(samples, first_t, native_rate)``; ``first_t`` is the time of the first decoded sample;
    ``samples`` is None when nothing decoded.
    """
    import av

    if seek_s is not None:
        try:
            container.seek(int(seek_s / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError:
            container.seek(0, stream=stream)
    chunks: list[np.ndarray] = []
    first_t: float | None = None
    expected_t: float | None = None
    native_rate = stream.codec_context.sample_rate or stream.rate
    try:
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time_base is not None:
                t = float(frame.pts * frame.time_base)
            else:
                t = expected_t if expected_t is not None else 0.0
            if first_t is None:
                first_t = t
            native_rate = frame.sample_rate
            mono = _to_mono(_frame_to_float(frame), channel, path)
            chunks.append(mono)
            expected_t = t + mono.shape[0] / native_rate
            if t > end_s:
                break
    except av.error.FFmpegError as exc:
        if not chunks:
            raise MediaError("decode_audio", f"cannot decode audio of {path}: {exc}") from exc
        # A truncated/corrupt tail: keep what decoded; the segment check in decode_audio decides.
    if not chunks or first_t is None:
        return None, 0.0, native_rate
    return np.concatenate(chunks), first_t, native_rate


def _decode_segment(
    path: str | Path, seek_s: float | None, end_s: float, channel: int | None
) -> tuple[np.ndarray | None, float, int]:
    """Open ``path`` afresh (a clean demuxer and decoder state) and decode from ``seek_s`` to ``end_s``."""
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises many types (InvalidDataError, FileNotFoundError, ...)
        raise MediaError("decode_audio", f"cannot open {path}: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise MediaError("decode_audio", f"{path} has no audio stream")
        stream = container.streams.audio[0]
        return _decode_from(container, stream, seek_s if stream.time_base is not None else None, end_s, channel, path)


def decode_audio(
    path: str | Path,
    start_s: float,
    end_s: float,
    sample_rate: int = 16000,
    channel: int | None = None,
) -> np.ndarray:
    """Decode ``[start_s, end_s)`` of ``path`` to mono float32 at ``sample_rate``.

    ``channel=None`` averages all channels; an integer picks that channel (IEMOCAP's speaker side,
    MOSEI's channel 0).  A segment that runs past the end of the audio is cut at the end (MOSEI
    transcripts sometimes end a few ms after the file); one that starts at or after the end, an
    unreadable file, a file without an audio stream or a missing channel raise :class:`MediaError`
    with stage ``decode_audio``.  If a seek lands after ``start_s`` (containers with sparse seek
    points) or the decoder cannot start there (MPEG program streams), the file is opened again and
    decoded from its start rather than the segment being shifted or lost.
    """
    if end_s <= start_s:
        raise MediaError("decode_audio", f"empty segment [{start_s}, {end_s}]")
    seek_s = start_s - SEEK_MARGIN_S if start_s > SEEK_MARGIN_S else None
    try:
        mono, first_t, native_rate = _decode_segment(path, seek_s, end_s, channel)
        overshot = seek_s is not None and (mono is None or first_t > start_s + 1e-3)
    except MediaError:
        if seek_s is None:
            raise
        overshot = True  # e.g. MPEG-PS (GRID .mpg): the MP2 decoder cannot start at the seek point
    if overshot:
        # Nothing usable after the seek point, or it overshot: decode this file from its start.
        mono, first_t, native_rate = _decode_segment(path, None, end_s, channel)
    if mono is None:
        raise MediaError("decode_audio", f"no audio samples decoded from {path}")
    lo = max(0, round((start_s - first_t) * native_rate))
    hi = min(mono.shape[0], round((end_s - first_t) * native_rate))
    if hi <= lo:
        raise MediaError(
            "decode_audio",
            f"segment [{start_s:.3f}, {end_s:.3f}] s lies outside the audio of {path} "
            f"(decoded {first_t:.3f}..{first_t + mono.shape[0] / native_rate:.3f} s)",
        )
    segment = mono[lo:hi]
    if native_rate != sample_rate:
        ratio = Fraction(sample_rate, native_rate)
        from scipy.signal import resample_poly  # only here: importing scipy.signal costs ~0.4 CPU-s

        segment = resample_poly(segment, ratio.numerator, ratio.denominator).astype(np.float32)
    if not np.all(np.isfinite(segment)):
        raise MediaError("decode_audio", f"non-finite samples decoded from {path}")
    return np.ascontiguousarray(segment, dtype=np.float32)
