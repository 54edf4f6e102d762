"""``run.json``: the record of a training run, typed, with one way in and one out.

A run folder is the unit of record of ``emoprep train`` (see :mod:`emoprep.format.names` for its
files).  ``run.json`` says what ran on what: versions, the shards (folder, config hash, labels), the
column each branch read and why, the dataset-dependent settings chosen and why, the optimiser's
groups, device and status.  The trainer writes it through :func:`write_run_record` when the run
starts and again when it finishes; the trainer (``--resume``, ``evaluate``) and the report read it
through :func:`read_run_record`, so run.json files of every emoprep version read the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .files import write_json_atomic
from .names import RUN_RECORD


@dataclass(frozen=True)
class ShardsUsed:
    """The shard folder a run trained on, as it was when the run started."""

    folder: str
    config_hash: str
    dataset: str | None = None
    emoprep_version: str | None = None
    label_names: tuple[str, ...] = ()
    rows_per_split: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardsUsed:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["label_names"] = tuple(values.get("label_names") or ())
        return cls(**{"folder": "", "config_hash": "", **values})


_OPTIONAL = ("chosen", "preset", "label_vectors", "parameters", "param_groups", "compute", "extraction", "finished")
"""Fields written only once they are known (or when the run has them), in this order after ``status``."""


@dataclass(frozen=True)
class RunRecord:
    """The content of ``run.json``."""

    model: str
    shards: ShardsUsed
    task: str
    pos_weight: tuple[float, ...]
    emoprep_version: str = "unknown"
    torch_version: str | None = None
    python: str | None = None
    created: str | None = None
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per modality: ``{"column", "reason"}``."""
    vocabulary_size: int | None = None
    train_rows_labelled: int | None = None
    device: str | None = None
    processes: int = 1
    status: str = "training"
    chosen: dict[str, Any] | None = None
    """How each dataset-dependent setting was chosen: ``{key: {"value", "reason"}}``."""
    preset: Any = None
    label_vectors: Any = None
    parameters: int | None = None
    param_groups: list[dict[str, Any]] | None = None
    compute: dict[str, Any] | None = None
    extraction: dict[str, Any] | None = None
    """The extraction configuration of the shards the run trained on (their ``manifest.json``'s
    ``config``: feature parameters, backends, the GloVe file's sha256), copied here at training time so
    that ``emoprep predict`` extracts new media exactly as the training shards were extracted even when
    those shards are gone.  None in runs of emoprep before it was kept: they read it from the shards."""
    finished: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this emoprep does not know (written by a newer one): kept, written back."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the order emoprep has always written them; optional fields only
        when set."""
        out: dict[str, Any] = {
            "emoprep_version": self.emoprep_version,
            "torch_version": self.torch_version,
            "python": self.python,
            "model": self.model,
            "created": self.created,
            "shards": self.shards.to_dict(),
            "inputs": self.inputs,
            "vocabulary_size": self.vocabulary_size,
            "task": self.task,
            "train_rows_labelled": self.train_rows_labelled,
            "pos_weight": list(self.pos_weight),
            "device": self.device,
            "processes": self.processes,
            "status": self.status,
        }
        out.update({name: getattr(self, name) for name in _OPTIONAL if getattr(self, name) is not None})
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        """A run record of any emoprep version: a field an older one did not write takes its default."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in d.items() if k in known}
        values["shards"] = ShardsUsed.from_dict(d.get("shards") or {})
        values["pos_weight"] = tuple(float(w) for w in d.get("pos_weight") or ())
        return cls(**{"model": "unknown", "task": "multilabel", **values},
                   extra={k: v for k, v in d.items() if k not in known})


def is_run_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a training run's record (one stat, no parsing)."""
    return (Path(folder) / RUN_RECORD).is_file()


def read_run_record(folder: str | Path) -> RunRecord:
    """The ``run.json`` of the run folder ``folder``."""
    return RunRecord.from_dict(json.loads((Path(folder) / RUN_RECORD).read_text()))


def write_run_record(folder: str | Path, record: RunRecord) -> None:
    """Write ``record`` atomically as the folder's ``run.json``."""
    write_json_atomic(Path(folder) / RUN_RECORD, record.to_dict())
