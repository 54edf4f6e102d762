"""The table ``emoprep predict`` writes: one row per utterance (or window) of new recordings.

Written by :mod:`emoprep.prediction`, read by the timeline report (:mod:`emoprep.report`) and by
anyone's analysis; both sides take the column names and the metadata keys from here.

Columns, in order: ``id``, ``media``, ``start``, ``end`` (seconds in the media file), ``text`` (the
transcript line, null for windows), ``prob_<label>`` (float32 sigmoid probability) and
``pred_<label>`` (int8, ``prob > threshold`` with the run's validation thresholds) per class,
``modalities`` (the model's modalities that had at least one real position in the row, e.g.
``acoustic,visual`` when there is no text), ``face`` (one face crop of the row, PNG bytes, for the
timeline; null without one) and ``error`` (null, or why the row has no probabilities: a failure row).
Parquet metadata: ``emoprep.predictions`` (this format's version), ``emoprep.label_names``,
``emoprep.thresholds``, ``emoprep.run`` (the run folder) and ``emoprep.model``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PREDICTIONS_VERSION = 1
KIND_KEY = b"emoprep.predictions"
IDENTITY_COLUMNS = ("id", "media", "start", "end", "text")
TRAILING_COLUMNS = ("modalities", "face", "error")


def prob_column(label: str) -> str:
    return f"prob_{label}"


def pred_column(label: str) -> str:
    return f"pred_{label}"


def predictions_schema(label_names: tuple[str, ...]) -> pa.Schema:
    """The columns of a predictions table for a run with ``label_names``."""
    fields = [pa.field("id", pa.string()), pa.field("media", pa.string()), pa.field("start", pa.float64()),
              pa.field("end", pa.float64()), pa.field("text", pa.string())]
    fields += [pa.field(prob_column(n), pa.float32()) for n in label_names]
    fields += [pa.field(pred_column(n), pa.int8()) for n in label_names]
    fields += [pa.field("modalities", pa.string()), pa.field("face", pa.binary()), pa.field("error", pa.string())]
    return pa.schema(fields)


def predictions_metadata(label_names: tuple[str, ...], thresholds: list[float], run: str, model: str) -> dict[bytes, bytes]:
    return {
        KIND_KEY: str(PREDICTIONS_VERSION).encode(),
        b"emoprep.label_names": json.dumps(list(label_names)).encode(),
        b"emoprep.thresholds": json.dumps([float(t) for t in thresholds]).encode(),
        b"emoprep.run": run.encode(),
        b"emoprep.model": model.encode(),
    }


@dataclass(frozen=True)
class PredictionsInfo:
    """What a predictions file says about itself."""

    label_names: tuple[str, ...]
    thresholds: tuple[float, ...]
    run: str
    model: str


def is_predictions_file(path: str | Path) -> bool:
    """Whether ``path`` is a Parquet file written by ``emoprep predict`` (its footer only is read)."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".parquet":
        return False
    try:
        meta = pq.read_schema(p).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return KIND_KEY in meta


def read_predictions(path: str | Path) -> tuple[pa.Table, PredictionsInfo]:
    """The table of a predictions file and its metadata."""
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    info = PredictionsInfo(
        label_names=tuple(json.loads(meta.get(b"emoprep.label_names", b"[]"))),
        thresholds=tuple(json.loads(meta.get(b"emoprep.thresholds", b"[]"))),
        run=meta.get(b"emoprep.run", b"").decode(),
        model=meta.get(b"emoprep.model", b"").decode(),
    )
    return table, info
