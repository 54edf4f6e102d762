"""``manifest.json``: the run's table of contents, written last so that its presence means complete.

Readers that find no manifest must treat the folder as an unfinished run.  The manifest lists each
shard with rows, bytes and sha256, the configuration and its hash, every extractor's backend and
versions, per-split counts, failures and the text OOV rate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FAILURES = "failures.parquet"
UTTERANCES = "utterances.parquet"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a shard folder (``path`` may be the folder or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST
    if not p.is_file():
        raise FileNotFoundError(
            f"{p} not found: the folder is not an emoprep output, or its run has not finished "
            "(rerun the same `emoprep extract` command to complete it)"
        )
    return json.loads(p.read_text())


def dataset_card(manifest: dict[str, Any]) -> str:
    """A HuggingFace dataset card (README.md) whose YAML maps each split to its shard files."""
    splits = sorted({s["split"] for s in manifest["shards"]})
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {split}", f"    path: \"{split}-*.parquet\""]
    lines += ["---", "", f"# {manifest['dataset']} features written by emoprep {manifest['emoprep_version']}", ""]
    lines.append(
        f"Schema v{manifest['schema_version']} (see emoprep's `schemas/utterance.v{manifest['schema_version']}.json`); "
        f"config hash `{manifest['config_hash']}`. `manifest.json` lists every shard with its sha256; "
        "`failures.parquet` lists utterances whose extraction failed at some stage."
    )
    return "\n".join(lines) + "\n"
