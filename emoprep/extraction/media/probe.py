"""Where a media file's content ends, read from its header, so readers can check segment times.

Why in the reader and not in the worker: an utterance's ``end_s`` is part of the plan of record
(``utterances.parquet``) and of every row; only a reader can clamp it before the plan is made, and
count it beside the other repaired times.  Opening a container reads its header and probes a few
packets (1-8 ms per file on MP4, MOV, MPEG-PS and WAV), and each file is opened once per read, not
once per utterance, so this costs seconds for thousands of files.  A media URL is probed through
fsspec's file object (ranged reads of the header, never the whole recording): the reader runs on the
driver, and the recordings themselves are fetched by the workers that decode them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...format.storage import filesystem, is_url

HEADER_BLOCK = 1 << 20
"""Bytes per ranged read when a remote file's header is probed (one or two reads for MP4, WAV)."""


@dataclass(frozen=True)
class MediaInfo:
    """What a media file's header says: where it ends and which kinds of stream it holds."""

    end_s: float | None
    has_audio: bool
    has_video: bool


def probe_media(path: str | Path, options: Mapping[str, Any] | None = None) -> MediaInfo | None:
    """The header facts of ``path`` (a local file or a URL, ``options`` its storage options); None
    when the file cannot be opened as media at all."""
    import av

    remote = filesystem(str(path), options) if is_url(str(path)) else None  # no backend: SetupError
    with ExitStack() as stack:
        try:
            source: Any = str(path)
            if remote is not None:
                fs, key = remote
                source = stack.enter_context(fs.open(key, "rb", block_size=HEADER_BLOCK))
            container = stack.enter_context(av.open(source))
        except Exception:  # av raises many types; an unreadable file is the caller's failure to report
            return None
        return _info(container)


def _info(container: Any) -> MediaInfo:
    """What an open container's header says."""
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


def media_end_s(path: str | Path, options: Mapping[str, Any] | None = None) -> float | None:
    """Time (s, on the file's own timeline, as segment times are) where the last audio or video
    stream of ``path`` ends; None when the file cannot be opened or states no duration.

    Stream durations are used where the container gives them (start + duration of each audio and
    video stream, the latest wins); otherwise the container's own start and duration.  None means
    "unknown": callers then leave the segment as it is, and decoding judges it later.
    """
    info = probe_media(path, options)
    return None if info is None else info.end_s


__all__ = ["MediaInfo", "media_end_s", "probe_media"]
