"""The contract every dataset reader keeps (one module per corpus, lhotse style).

A reader turns a raw dataset folder into :class:`~emoprep.extraction.records.Utterance` records and a list of
:class:`~emoprep.extraction.records.ReaderIssue` for everything it could not use.  It reads only transcripts,
labels and file listings: media are decoded later, on the workers.  Readers are cheap, pure and
deterministic: the same tree and options give the same utterances in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..config import ExtractConfig
from ..records import ReaderIssue, Utterance
from .media_index import MediaIndex


@dataclass
class ReadResult:
    """Utterances to extract, plus everything the reader skipped or repaired, with its source."""

    utterances: list[Utterance]
    label_names: tuple[str, ...]
    issues: list[ReaderIssue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    """Reader-specific tallies for the summary and check-raw (e.g. ``unlabelled_skipped``)."""


class DatasetReader(Protocol):
    """``read(root, config)`` for one corpus; registered by name in :mod:`emoprep.extraction.readers`."""

    name: str

    def read(self, root: Path, config: ExtractConfig) -> ReadResult: ...


class CorpusReader(Protocol):
    """A reader of a corpus tree that may live on object storage: it declares ``metadata`` (the
    ``/``-separated patterns of the files it reads, media excluded), and takes ``media`` (a
    :class:`~emoprep.extraction.readers.media_index.MediaIndex`), so that over a local mirror of
    those files it asks the index, never the disk, about its recordings."""

    name: str
    metadata: tuple[str, ...]

    def read(self, root: Path, config: ExtractConfig, media: MediaIndex | None = None) -> ReadResult: ...
