"""The run's model over a folder of extracted features: one output row per utterance.

Rows are featurised by the run's own :class:`~emoprep.train.inputs.Featurizer` (the vocabulary and
standardisation fitted on its training split) and scored by its best weights, as ``predictions.parquet``
rows were at the end of training; the decisions use the thresholds chosen on validation.

A row is a *failure row* (null probabilities, ``error`` says why) when an extractor that feeds the
model failed on it (an unreadable file, a window without audio, ...): the model would otherwise run
on a silently emptied modality.  A modality that is simply absent is not a failure: without a
transcript there is no text, and the model fuses the others, as it did in training for a row
without that modality; the ``modalities`` column says which it used.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..format.failures import read_failures
from ..format.names import UTTERANCES
from ..format.predictions import predictions_metadata, predictions_schema, pred_column, prob_column
from ..format.reader import iter_shards
from ..train.trained import TrainedModel
from .features import MODALITY_OF_COLUMN

STAGES_OF_MODALITY = {
    "text": ("text",),
    "acoustic": ("acoustic", "opensmile", "decode_audio"),
    "logmel": ("logmel", "decode_audio"),
    "visual": ("visual", "aus", "decode_video"),
}
"""Failure stages (``failures.parquet``) that leave an extraction modality's columns empty."""


def _failure_messages(folder: Path, model: TrainedModel) -> dict[str, str]:
    """``{utterance_id: message}`` of the extraction failures that touch a modality the model reads."""
    table = read_failures(folder)
    if table is None:
        return {}
    modalities = {MODALITY_OF_COLUMN[b.column] for b in model.featurizer.branches.values()}
    relevant = {s for m in modalities for s in STAGES_OF_MODALITY[m]}
    out: dict[str, list[str]] = defaultdict(list)
    for f in table.to_pylist():
        if f["stage"] in relevant or f["stage"] == "reader":
            out[f["utterance_id"]].append(f"{f['stage']}: {f['error_type']}: {f['message']}")
    return {k: "; ".join(v) for k, v in out.items()}


def _middle_face(crops: list[dict[str, Any] | None] | None) -> bytes | None:
    """The stored bytes of the face crop nearest the middle of a row's frames (None without a face)."""
    found = [c for c in (crops or []) if c]
    return found[len(found) // 2]["bytes"] if found else None


def apply_model(model: TrainedModel, folder: Path, extra_failures: list[dict[str, Any]] = (),
                batch_rows: int = 256) -> pa.Table:
    """The output table (:mod:`emoprep.format.predictions`) of the model over the shard folder
    ``folder``, rows in the plan's order, plus ``extra_failures`` rows (media that could not be read)."""
    labels = model.label_names
    plan = pq.read_table(folder / UTTERANCES, columns=["utterance_id", "video_path", "audio_path", "start_s", "end_s", "text"])
    failed = _failure_messages(folder, model)
    columns = list(dict.fromkeys(model.featurizer.columns() + ["face_crops"]))
    scored: dict[str, tuple[np.ndarray, str, bytes | None]] = {}
    for batch in iter_shards(folder, columns=columns, batch_rows=batch_rows):
        table = pa.Table.from_batches([batch])
        examples = model.featurizer.examples(table, labelled_only=False)
        faces = [_middle_face(c) for c in table.column("face_crops").to_pylist()]
        keep = [i for i, e in enumerate(examples) if e[0] not in failed]
        probs = model.probabilities([examples[i] for i in keep])
        for row, i in enumerate(keep):
            used = ",".join(m for m, (_, mask) in examples[i][3].items() if mask.any())
            scored[examples[i][0]] = (probs[row], used, faces[i])
    rows: list[dict[str, Any]] = []
    for u in plan.to_pylist():
        uid = u["utterance_id"]
        row = {"id": uid, "media": u["video_path"] or u["audio_path"], "start": u["start_s"], "end": u["end_s"],
               "text": u["text"], "modalities": None, "face": None, "error": failed.get(uid)}
        if uid in scored:
            p, row["modalities"], row["face"] = scored[uid]
            row.update({prob_column(n): float(p[k]) for k, n in enumerate(labels)})
            row.update({pred_column(n): int(p[k] > model.thresholds[k]) for k, n in enumerate(labels)})
        elif row["error"] is None:
            row["error"] = "no features were written for this utterance"
        rows.append(row)
    planned = {r["id"] for r in rows}
    # reader-stage failures (a missing file, an end before the start) never reach the plan
    rows += [{"id": uid, "error": message} for uid, message in failed.items() if uid not in planned]
    return output_table(model, rows + [dict(f) for f in extra_failures])


def output_table(model: TrainedModel, rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` as the predictions table of ``model``'s run (columns absent from a row are null)."""
    table = pa.Table.from_pylist(rows, schema=predictions_schema(model.label_names))
    return table.replace_schema_metadata(predictions_metadata(
        model.label_names, [float(t) for t in model.thresholds], model.where, model.config.model))
