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

from ..errors import MediaError

SEEK_MARGIN_S = 1.0
"""Seek this far before the start: keyframes of compressed audio may precede the target."""


def _frame_to_float(frame) -> np.ndarray:  # noqa: ANN001 - av.AudioFrame
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


def decode_audio(
    path: str | Path,
    start_s: float,
    end_s: float,
    sample_rate: int = 16000,
    channel: int | None = None,
) -> np.ndarray:
    """Decode ``[start_s, end_s)`` of ``path`` to mono float32 at ``sample_rate``.

    ``channel=None`` averages all channels; an integer picks that channel (IEMOCAP's speaker side,
    MOSEI's channel 0).  Raises :class:`MediaError` with stage ``decode_audio`` when the file is
    unreadable, has no audio stream or the segment holds no samples.
    """
    import av  # local import: workers that never touch audio do not pay for it
    from scipy.signal import resample_poly

    if end_s <= start_s:
        raise MediaError("decode_audio", f"empty segment [{start_s}, {end_s}]")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises many types (InvalidDataError, FileNotFoundError, ...)
        raise MediaError("decode_audio", f"cannot open {path}: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise MediaError("decode_audio", f"{path} has no audio stream")
        stream = container.streams.audio[0]
        native_rate = stream.codec_context.sample_rate or stream.rate
        if start_s > SEEK_MARGIN_S and stream.time_base is not None:
            target = int((start_s - SEEK_MARGIN_S) / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True)
            except av.error.FFmpegError:
                container.seek(0, stream=stream)
        chunks: list[np.ndarray] = []
        first_t: float | None = None
        expected_t: float | None = None
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * frame.time_base) if frame.pts is not None else expected_t or 0.0
                if first_t is None:
                    first_t = t
                native_rate = frame.sample_rate
                data = _frame_to_float(frame)
                chunks.append(data)
                expected_t = t + data.shape[1] / native_rate
                if t > end_s:
                    break
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError("decode_audio", f"cannot decode audio of {path}: {exc}") from exc
            # A truncated file: keep what decoded; the segment check below decides.
    if not chunks or first_t is None:
        raise MediaError("decode_audio", f"no audio samples decoded from {path}")
    audio = np.concatenate(chunks, axis=1)
    if channel is None:
        mono = audio.mean(axis=0)
    elif channel < audio.shape[0]:
        mono = audio[channel]
    else:
        raise MediaError("decode_audio", f"{path} has {audio.shape[0]} channel(s), channel {channel} requested")
    lo = max(0, int(round((start_s - first_t) * native_rate)))
    hi = min(mono.shape[0], int(round((end_s - first_t) * native_rate)))
    if hi <= lo:
        raise MediaError(
            "decode_audio",
            f"segment [{start_s:.3f}, {end_s:.3f}] s lies outside the audio of {path} "
            f"(decoded {first_t:.3f}..{first_t + mono.shape[0] / native_rate:.3f} s)",
        )
    segment = mono[lo:hi]
    if native_rate != sample_rate:
        ratio = Fraction(sample_rate, native_rate)
        segment = resample_poly(segment, ratio.numerator, ratio.denominator).astype(np.float32)
    if not np.all(np.isfinite(segment)):
        raise MediaError("decode_audio", f"non-finite samples decoded from {path}")
    return np.ascontiguousarray(segment, dtype=np.float32)
