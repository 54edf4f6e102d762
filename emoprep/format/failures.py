"""``failures.parquet``: one row per utterance and stage that failed, and the record behind a row.

A failure is part of the contract: a shard's footer lists the failures met while writing it, and the
run gathers them (with the reader's) into ``failures.parquet`` so that nothing that went wrong is
silent.  The columns are the fields of :class:`Failure`, with the ``shard`` that recorded it after
the id, so a new field of a failure is a new column at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .names import FAILURES
from .storage import Folder


@dataclass(frozen=True)
class Failure:
    """One recorded failure: which utterance, at which stage, and why."""

    utterance_id: str
    stage: str
    error_type: str
    message: str


def _failures_schema() -> pa.Schema:
    fields = [pa.field(f.name, pa.string(), nullable=False) for f in dataclasses.fields(Failure)]
    return pa.schema([fields[0], pa.field("shard", pa.string()), *fields[1:]])


FAILURES_SCHEMA = _failures_schema()
"""Non-null strings, except ``shard`` (null for reader-stage failures)."""


def read_failures(folder: Path | Folder, name: str = FAILURES) -> pa.Table | None:
    """The failures table of a shard folder (local or on object storage), None when the run wrote
    none (an unfinished run)."""
    root = Folder.of(folder)
    if not root.exists(name):
        return None
    fs, base = root.arrow()
    return pq.read_table(f"{base}/{name}", filesystem=fs)
