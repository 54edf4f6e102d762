"""The records that flow through the pipeline: utterances in, shard specs planned, shard reports out.

They are frozen dataclasses so that they hash, pickle cheaply to Dask workers and cannot be changed by
accident half-way through a run.  Everything a worker needs to process an utterance is on the
:class:`Utterance` itself: workers never go back to the raw dataset's label files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..format.failures import Failure
from ..format.names import SPLITS, shard_name

__all__ = ["SPLITS", "Failure", "Labels", "ReaderIssue", "ShardReport", "ShardSpec", "Utterance"]


@dataclass(frozen=True)
class Labels:
    """Labels of one utterance.  ``None`` means "not annotated in this dataset", never "negative".

    ``emotions`` is multi-hot in the dataset's label order (``DatasetReader.label_names``);
    ``emotion_intensity`` holds the dataset's graded scores in the same order where it has them
    (MOSEI: mean annotator intensity 0-3).
    """

    emotions: tuple[int, ...] | None = None
    emotion_intensity: tuple[float, ...] | None = None
    sentiment: float | None = None
    valence: float | None = None
    arousal: float | None = None
    dominance: float | None = None
    category: str | None = None


@dataclass(frozen=True)
class Utterance:
    """One labelled segment of a recording: the unit of every row in every shard.

    Times are seconds from the start of the media file.  ``audio_channel`` selects a channel of a
    multi-channel recording (``None`` mixes down to mono); ``video_region`` selects the part of the
    frame that shows the speaker (``"left"``/``"right"`` half for IEMOCAP's side-by-side videos).
    """

    utterance_id: str
    dataset: str
    video_id: str
    start_s: float
    end_s: float
    text: str | None = None
    speaker: str | None = None
    split: str = "none"
    video_path: str | None = None
    audio_path: str | None = None
    audio_channel: int | None = None
    video_region: str | None = None
    labels: Labels = field(default_factory=Labels)


COLUMN_NAMES: dict[str, str] = {"category": "emotion_category"}
"""Record fields whose output column has another name: the only one is the dataset's own category code.
Every other field of :class:`Utterance` and :class:`Labels` that the published schema has is an
output column of the same name; the rest (media paths, channel, region) are the plan's only."""


def record_fields() -> tuple[str, ...]:
    """The fields of :class:`Utterance`, its ``labels`` replaced by the fields of :class:`Labels`, in
    declaration order: the columns of ``utterances.parquet``."""
    out: list[str] = []
    for f in fields(Utterance):
        out += [g.name for g in fields(Labels)] if f.name == "labels" else [f.name]
    return tuple(out)


def record_values(u: Utterance) -> dict[str, Any]:
    """``u`` flattened as :func:`record_fields`, tuples as lists and times as floats (Arrow-ready)."""
    values: dict[str, Any] = {}
    for name in record_fields():
        value = getattr(u.labels if hasattr(u.labels, name) else u, name)
        values[name] = list(value) if isinstance(value, tuple) else value
    values["start_s"], values["end_s"] = float(u.start_s), float(u.end_s)
    return values


@dataclass(frozen=True)
class ReaderIssue:
    """Something a dataset reader could not use, reported with where it came from.

    ``kind`` is one of ``malformed`` (unparseable line), ``missing_media``, ``unlabelled``
    (segment without labels, skipped by default), ``clamped`` (a negative start set to 0),
    ``clamped_end`` (an end past the end of the media set to the media's end) or
    ``invalid`` (a segment that cannot be an utterance, e.g. end <= start).  Issues with an
    ``utterance_id`` and kind ``invalid``/``missing_media`` become rows of ``failures.parquet``.
    """

    kind: str
    message: str
    source: str = ""
    utterance_id: str | None = None


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work: a fixed, ordered set of utterances that always lands in the same file."""

    index: int
    split: str
    split_index: int
    split_count: int
    utterances: tuple[Utterance, ...]

    @property
    def filename(self) -> str:
        """HuggingFace-style name, so `datasets` maps files to splits without a loading script."""
        return shard_name(self.split, self.split_index, self.split_count)

    @property
    def utterance_ids(self) -> tuple[str, ...]:
        return tuple(u.utterance_id for u in self.utterances)


@dataclass(frozen=True)
class ShardReport:
    """What a shard task returns to the client: small metadata, never the data itself."""

    filename: str
    split: str
    rows: int
    bytes: int
    sha256: str
    skipped: bool
    seconds: float
    failures: tuple[Failure, ...] = ()
    stats: dict = field(default_factory=dict)
