"""Where a media file's content ends, read from its header, so readers can check segment times.

Why in the reader and not in the worker: an utterance's ``end_s`` is part of the plan of record
(``utterances.parquet``) and of every row; only a reader can clamp it before the plan is made, and
count it beside the other repaired times.  Opening a container reads its header and probes a few
packets (1-8 ms per file on MP4, MOV, MPEG-PS and WAV), and each file is opened once per read, not
once per utterance, so this costs seconds for thousands of files.
"""

from __future__ import annotations

from pathlib import Path


def media_end_s(path: str | Path) -> float | None:
    """Time (s, on the file's own timeline, as segment times are) where the last audio or video
    stream of ``path`` ends; None when the file cannot be opened or states no duration.

    Stream durations are used where the container gives them (start + duration of each audio and
    video stream, the latest wins); otherwise the container's own start and duration.  None means
    "unknown": callers then leave the segment as it is, and decoding judges it later.
    """
    import av

    try:
        container = av.open(str(path))
    except Exception:  # av raises many types; an unreadable file is the decoder's failure to report
        return None
    with container:
        ends: list[float] = []
        for stream in (*container.streams.audio, *container.streams.video):
            if stream.duration is not None and stream.time_base is not None:
                start = stream.start_time if stream.start_time is not None else 0
                ends.append(float((start + stream.duration) * stream.time_base))
        if ends:
            return max(ends)
        if container.duration is not None:
            start = container.start_time if container.start_time is not None else 0
            return (start + container.duration) / 1_000_000  # av.time_base: microseconds
    return None


__all__ = ["media_end_s"]
