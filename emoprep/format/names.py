"""The file names of the two output folders, owned here so no other module spells them.

A shard folder (``emoprep extract --out``) and a run folder (``emoprep train --out``) are read by
other programs; their names are part of the contract, like the columns.  Shards follow HuggingFace's
``{split}-{i:05d}-of-{n:05d}.parquet`` so ``datasets`` maps files to splits without a loading script.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SPLITS: tuple[str, ...] = ("train", "valid", "test", "none")
"""Split names used everywhere; ``none`` holds utterances outside the chosen split scheme."""

# --- a shard folder -------------------------------------------------------------------------------
MANIFEST = "manifest.json"
"""Written last: its presence means the run is complete."""
FAILURES = "failures.parquet"
UTTERANCES = "utterances.parquet"
"""The plan of record: every utterance the run will write, written before any media is touched."""
CARD = "README.md"
"""The HuggingFace dataset card that maps splits to shard files."""
TMP_MARKER = ".tmp-"
"""In the name of every file being written; leftovers of killed runs carry it and are removed."""

_SHARD_NAME = re.compile(r"^([a-z]+)-(\d{5})-of-(\d{5})\.parquet$")


def shard_name(split: str, index: int, count: int) -> str:
    """The file of shard ``index`` (0-based) of ``count`` in ``split``."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def is_shard_name(name: str) -> bool:
    """Whether ``name`` is a shard file's (and not the plan, the failures or a temporary file)."""
    return _SHARD_NAME.match(name) is not None


def shard_stem(name: str) -> str:
    """``train-00000-of-00004`` of ``train-00000-of-00004.parquet`` (task names, logs)."""
    return name.removesuffix(".parquet")


def temporary_path(path: Path) -> Path:
    """The hidden name ``path`` is written under before it is renamed into place (one per process)."""
    return path.with_name(f".{path.name}{TMP_MARKER}{os.getpid()}")


# --- a run folder ---------------------------------------------------------------------------------
RUN_CONFIG = "config.yaml"
RUN_RECORD = "run.json"
FEATURIZER = "featurizer.json"
HISTORY = "history.jsonl"
BEST_WEIGHTS = "best.pt"
LAST_STATE = "last.pt"
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
EVALUATIONS = "evaluations"
FINISHED_RUN_FILES = (RUN_RECORD, METRICS, HISTORY, PREDICTIONS)
"""What a finished run folder always holds (the report draws from them)."""


def evaluation_name(split: str, config_hash: str) -> str:
    """``evaluations/<this>``: one scoring of a run on ``split`` of the shards ``config_hash``."""
    return f"{split}-{config_hash}.json"
