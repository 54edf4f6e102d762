"""Two stacks, one contract: the trainer reads shards only through the shard reader and the schema,
and extraction never loads the trainer.  Checked in fresh interpreters, on what actually gets imported."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN_IN_TRAINING = ("emoprep.extraction", "tensorflow", "mediapipe", "disvoice", "dask")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _hits(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_training_imports_no_extraction_stack() -> None:
    modules = _modules_after(
        "import cli, emoprep.train.run, emoprep.train.models\n"
        "emoprep.train.models.model_names()"
    )
    assert "emoprep.train.run" in modules and "emoprep.format.reader" in modules
    assert _hits(modules, FORBIDDEN_IN_TRAINING) == []


def test_extraction_imports_no_trainer() -> None:
    modules = _modules_after(
        "import cli, emoprep.extraction, emoprep.extraction.engine.worker, emoprep.extraction.progress, emoprep.report.folder_summary\n"
        "from emoprep.extraction.extractors import build_extractor"
    )
    assert "emoprep.extraction" in modules
    assert _hits(modules, ("emoprep.train",)) == []


def test_reading_commands_import_no_extraction_dag() -> None:
    """``inspect`` and the report of a shard folder only read: no DAG, no Dask, no extractors, no
    torch (the report of a training run loads torch only to draw MESM's attention)."""
    modules = _modules_after(
        "import emoprep, emoprep.cli, emoprep.report.folder_summary, emoprep.report, emoprep.report.shard_folder, emoprep.format.verify"
    )
    assert "emoprep.report.shard_folder" in modules and "emoprep.version" in modules
    assert _hits(modules, ("emoprep.extraction", "dask", "torch", "tensorflow", "mediapipe")) == []
