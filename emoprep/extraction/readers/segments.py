"""One clean-up of segment times, shared by every reader (as lhotse's ``fix_manifests`` is).

Transcripts and user CSVs hold times a row cannot have: a negative start (MOSEI has some), an end at
or before the start, an end past the end of the media (the last words of a transcript often run past
the recording).  Every reader passes each segment through :meth:`SegmentCleaner.times` at the same
point, so the rules, the messages and the counts (``clamped``, ``invalid``, ``clamped_end``, in the
reader's counts and as issues) are the same whatever the corpus:

* a negative start becomes 0 (``clamped``);
* an end at or before the (clamped) start is not an utterance (``invalid``: a ``failures.parquet`` row);
* a start at or past the end of the media is not an utterance either (``invalid``);
* an end past the end of the media becomes the media's end (``clamped_end``), so ``end_s`` is where
  the features stop.  The end is read from the files' headers (:func:`emoprep.extraction.media.probe.media_end_s`),
  once per file per read; an unknown end leaves the segment as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from ...format.storage import is_url
from ..media.probe import media_end_s
from ..records import ReaderIssue

T = TypeVar("T")
R = TypeVar("R")
PROBE_THREADS = 16
"""Requests about media URLs in flight at once (header probes, existence checks)."""


def concurrently(fn: Callable[[T], R], items: list[T]) -> list[R]:
    """``[fn(x) for x in items]`` with :data:`PROBE_THREADS` calls in flight: for requests to an object
    store, whose time is the store's latency rather than this machine's work."""
    if len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(PROBE_THREADS, len(items)), thread_name_prefix="emoprep-probe") as pool:
        return list(pool.map(fn, items))


@dataclass
class SegmentCleaner:
    """The times of each segment of one read, repaired or refused, with an issue for each change."""

    issues: list[ReaderIssue]
    counts: MutableMapping[str, int]
    media_end: Callable[[str], float | None] = media_end_s
    _ends: dict[str, float | None] = field(default_factory=dict)

    def _issue(self, kind: str, message: str, source: str, utterance_id: str) -> None:
        self.issues.append(ReaderIssue(kind, message, source, utterance_id))
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def probe_ahead(self, files: Iterable[str | None]) -> None:
        """Learn the ends of the media URLs among ``files`` now, :data:`PROBE_THREADS` at a time.

        Why: a probe of a URL is one or two ranged requests, so its time is the store's latency, not
        this machine's work; one after another, the thousands of recordings of a corpus on object
        storage would hold the read for minutes.  Local files are left to :meth:`end_of` (a local
        probe takes milliseconds), so a local read is unchanged; so are the ends, whichever order
        the probes finish in."""
        todo = list(dict.fromkeys(f for f in files if f and is_url(f) and f not in self._ends))
        self._ends.update(zip(todo, concurrently(self.media_end, todo)))

    def end_of(self, files: Iterable[str | None]) -> float | None:
        """Where the segment's media end (the latest of its files); None when any end is unknown."""
        found = []
        for f in (f for f in files if f):
            if f not in self._ends:
                self._ends[f] = self.media_end(f)
            found.append(self._ends[f])
        return None if not found or any(e is None for e in found) else max(found)

    def times(self, utterance_id: str, start: float, end: float, source: str,
              media: Iterable[str | None] = ()) -> tuple[float, float] | None:
        """``(start, end)`` to keep for the segment, or None when it cannot be an utterance."""
        if start < 0:
            self._issue("clamped", f"start {start} < 0 set to 0", source, utterance_id)
            start = 0.0
        if end <= start:
            self._issue("invalid", f"end {end} <= start {start}", source, utterance_id)
            return None
        media_end = self.end_of(media)
        if media_end is not None and start >= media_end:
            self._issue("invalid", f"start {start} is at or after the end of the media ({media_end:.3f} s)",
                        source, utterance_id)
            return None
        if media_end is not None and end > media_end:
            self._issue("clamped_end", f"end {end} after the end of the media set to {media_end:.3f}", source,
                        utterance_id)
            end = media_end
        return start, end
