"""Where a media file's content ends, read from its header, so readers can check segment times.

Why in the reader and not in the worker: an utterance's ``end_s`` is part of the plan of record
(``utterances.parquet``) and of every row; only a reader can clamp it before the plan is made, and
count it beside the other repaired times.  Opening a container reads its header and probes a few
packets (1-8 ms per file on MP4, MOV, MPEG-PS and WAV), and each file is opened once per read, not
once per utterance, so this costs seconds for thousands of files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MediaInfo:
    """What a media file's header says: where it ends and which kinds of stream it holds."""

    end_s: float | None
    has_audio: bool
    has_video: bool


def probe_media(path: str | Path) -> MediaInfo | None:
    """The header facts of ``path``; None when the file cannot be opened as media at all."""
    import av

    try:
        container = av.open(str(path))
    except Exception:  # av raises many types; an unreadable file is the caller's failure to report
        return None
    with container:
        ends: list[float] = []
        for stream in (*container.streams.audio, *container.streams.video):
            if stream.duration is not None and stream.time_base is not None:
                start = stream.start_time if stream.start_time is not None else 0
                ends.append(float((start + stream.duration) * stream.time_base))
        end = max(ends) if ends else None
        if end is None and container.duration is not None:
            start = container.start_time if container.start_time is not None else 0
            end = (start + container.duration) / 1_000_000  # av.time_base: microseconds
        return MediaInfo(end, bool(container.streams.audio), bool(container.streams.video))


def media_end_s(path: str | Path) -> float | None:
    """Time (s, on the file's own timeline, as segment times are) where the last audio or video
    stream of ``path`` ends; None when the file cannot be opened or states no duration.

    Stream durations are used where the container gives them (start + duration of each audio and
    video stream, the latest wins); otherwise the container's own start and duration.  None means
    "unknown": callers then leave the segment as it is, and decoding judges it later.
    """
    info = probe_media(path)
    return None if info is None else info.end_s


__all__ = ["MediaInfo", "media_end_s", "probe_media"]
