"""Features of new recordings, extracted exactly as the run's training shards were.

The configuration is the run's own record of its shards' extraction (``run.json`` ``extraction``;
runs of emoprep before it was kept read it from their shards' ``manifest.json``), narrowed to what the
model reads: only the modalities it has a branch for, only the acoustic backend and AU backend its
columns come from.  Narrowing changes no value (every extractor's output depends only on the
utterance and its own settings), and it saves the extractors the model would never read.

Extraction itself is :func:`emoprep.extraction.run_extract` over a recordings list, on the same Dask
runtime (local cluster, ``--scheduler``, or in-process) and with the same failure rows as ``extract``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import SetupError
from ..extraction import RunObserver, RunSummary, run_extract
from ..extraction.config import ExtractConfig, config_from_hashed
from ..extraction.glove import file_checksum, resolve_glove_path
from ..format.manifest import StorageOptions, read_manifest_or_none
from ..format.run_record import RunRecord

MODALITY_OF_COLUMN = {
    "glove": "text", "tokens": "text", "text": "text",
    "acoustic": "acoustic", "egemaps_lld": "acoustic", "compare_lld": "acoustic",
    "logmel": "logmel",
    "aus": "visual", "face_mesh": "visual", "face_crops": "visual",
}
"""The extraction modality (``--modalities``) that writes each column a model branch can read."""
ACOUSTIC_BACKEND_OF_COLUMN = {"acoustic": "disvoice", "egemaps_lld": "egemaps", "compare_lld": "compare"}
RECORDINGS_LIST = "recordings.jsonl"
FEATURES = "features"


def recorded_extraction(record: RunRecord, run_dir: str | Path, storage_options: StorageOptions = None) -> dict[str, Any]:
    """The run's extraction configuration: from ``run.json``, else from its shards' ``manifest.json``."""
    if record.extraction:
        return record.extraction
    manifest = read_manifest_or_none(record.shards.folder, storage_options) if record.shards.folder else None
    if manifest is None or not manifest.config:
        raise SetupError(
            f"{run_dir} records no extraction configuration (an emoprep before it was kept in run.json) and "
            f"its shards are not at {record.shards.folder or '(unrecorded)'}: the features cannot be extracted as "
            "they were for training; put the shard folder back there, or retrain the run"
        )
    if manifest.config_hash != record.shards.config_hash:
        raise SetupError(f"the shards at {record.shards.folder} (config {manifest.config_hash}) are not the ones "
                         f"{run_dir} trained on ({record.shards.config_hash}); put the right folder back there")
    return manifest.config


def prediction_config(extraction: dict[str, Any], columns: dict[str, str], glove: str | None) -> ExtractConfig:
    """The recordings-reader configuration that extracts what the model's branches (``{modality:
    column}``) read, with the training shards' parameters; ``glove``: the checked GloVe file or None."""
    cfg = config_from_hashed(extraction, glove=None)
    needed = {MODALITY_OF_COLUMN[c] for c in columns.values()}
    modalities = tuple(m for m in cfg.modalities if m in needed)
    absent = needed - set(modalities)
    if absent:  # a run cannot read what its shards never had; a record that says so is inconsistent
        raise SetupError(f"the run reads {', '.join(sorted(absent))} but its shards' configuration did not extract it")
    acoustic = cfg.acoustic
    if columns.get("acoustic") in ACOUSTIC_BACKEND_OF_COLUMN:  # hand-crafted; end-to-end models read logmel
        acoustic = dataclasses.replace(acoustic, backends=(ACOUSTIC_BACKEND_OF_COLUMN[columns["acoustic"]],))
    visual = cfg.visual
    if columns.get("visual") != "aus":
        visual = dataclasses.replace(visual, au_backend="none", au_options=())
    text = cfg.text
    if columns.get("text") == "glove":
        text = dataclasses.replace(text, glove=glove)
    else:
        text = dataclasses.replace(text, glove=None, glove_checksum=None)
    return dataclasses.replace(cfg, dataset="recordings", dataset_options=(), modalities=modalities,
                               acoustic=acoustic, visual=visual, text=text)


def check_glove(extraction: dict[str, Any], columns: dict[str, str], glove_flag: str | None) -> str | None:
    """The GloVe file a GloVe-based run needs, checked by the sha256 recorded at extraction, up front."""
    if columns.get("text") != "glove":
        return None
    expected = (extraction.get("text") or {}).get("glove_checksum")
    path = resolve_glove_path(glove_flag)
    if path is None:
        raise SetupError(f"this run reads GloVe vectors: give the same GloVe file it was extracted with (--glove PATH or "
                         f"$EMOPREP_GLOVE; sha256 {expected})")
    actual = file_checksum(path)
    if expected and actual != expected:
        raise SetupError(f"{path} is not the GloVe file the run's shards were extracted with: its sha256 is {actual}, "
                         f"the run's is {expected}; give that file with --glove")
    return str(path)


def write_recordings_list(rows: list[dict[str, Any]], path: Path) -> Path:
    """``rows`` as a JSON Lines recordings list (docs/recordings.md); a row without text has no ``text``
    key, which the reader reads as "no transcript" (an empty one would be an empty text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def extract_features(config: ExtractConfig, recordings: Path, out: Path, *, scheduler: str | None = None,
                     scheduler_file: str | None = None, workers: int | None = None, synchronous: bool = False,
                     observer: RunObserver | None = None) -> RunSummary:
    """Extract the recordings list into the shard folder ``out`` (resumed, like ``extract``, when the
    same features were extracted there before)."""
    summary = run_extract(config, recordings, out, glove=config.text.glove, scheduler=scheduler,
                          scheduler_file=scheduler_file, workers=workers, synchronous=synchronous, overwrite=True,
                          observer=observer)
    if not summary.complete:
        errors = "; ".join(f"{k}: {v}" for k, v in sorted(summary.shard_errors.items())[:3])
        raise SetupError(f"feature extraction did not complete ({errors}); rerun the same command to resume")
    return summary
