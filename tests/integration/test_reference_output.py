"""Refactoring must not change the output: the demo shards written by this tree are byte-identical to
those written by the code at :data:`REFERENCE`, on the same machine, from the same demo corpus.

The reference code is checked out in a temporary git worktree and run in a fresh interpreter (with
this environment's packages), so the comparison needs the repository's history; it skips, saying
so, in a source tree without it.  When a change is *meant* to change the output, move
:data:`REFERENCE` to the commit that changed it, in the same change, and say why in its message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "b49fd1f"
"""The last commit that changed the demo's output on purpose (issue 18: phonet's network in PyTorch,
whose float32 rounding differs from TensorFlow's, so the ``acoustic`` values moved by up to ~1e-4)."""

EXTRACT = """
import importlib, importlib.util, sys
tree, module = sys.argv[3], sys.argv[4]
# The editable install maps emoprep.pipelines and emoprep.schemas to *this* checkout's top-level
# folders; point them at the reference revision's own before anything reads a spec or the schema.
import emoprep
for name in ("pipelines", "schemas"):
    folder = f"{tree}/{name}"
    spec = importlib.util.spec_from_file_location(f"emoprep.{name}", f"{folder}/__init__.py",
                                                  submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    setattr(emoprep, name, package)
from emoprep.config import build_config
run_extract = importlib.import_module(module).run_extract
run_extract(build_config("demo", {"shard_size": 4}), sys.argv[1], sys.argv[2], synchronous=True)
"""


def _reference_tree(tmp: Path) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the reference revision cannot be checked out")
    known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{REFERENCE}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"revision {REFERENCE} is not in this clone (a shallow clone?)")
    tree = tmp / "reference"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), REFERENCE],
                   check=True, capture_output=True)
    return tree


def test_demo_shards_are_byte_identical_to_the_reference(small_demo: Path, demo_shards: Path, tmp_path: Path) -> None:
    tree = _reference_tree(tmp_path)
    try:
        out = tmp_path / "reference-shards"
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
        # the DAG's module as the reference revision names it (it was emoprep.pipeline until renamed)
        module = "emoprep.extraction" if (tree / "emoprep" / "extraction.py").exists() else "emoprep.pipeline"
        done = subprocess.run([sys.executable, "-c", EXTRACT, str(small_demo), str(out), str(tree), module], cwd=tree, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    ours = sorted(p.name for p in demo_shards.glob("*.parquet"))
    theirs = sorted(p.name for p in out.glob("*.parquet"))
    assert ours == theirs and any(name.startswith("train-") for name in ours)
    differ = {name: _differing_columns(demo_shards / name, out / name) for name in ours
              if (demo_shards / name).read_bytes() != (out / name).read_bytes()}
    assert differ == {}, f"these files (columns) differ from the output of {REFERENCE}: {differ}"
    _same_manifest(demo_shards, out)


def _same_manifest(ours: Path, theirs: Path) -> None:
    """The reference revision's manifest.json reads through today's typed Manifest and writes back
    as the same JSON (old files still read), and says what ours says apart from its time."""
    import json

    from emoprep.format.manifest import Manifest, read_manifest
    from emoprep.format.names import MANIFEST

    old = json.loads((theirs / MANIFEST).read_text())
    assert Manifest.from_dict(old).to_dict() == old
    a, b = read_manifest(ours), read_manifest(theirs)
    assert (a.config_hash, a.label_names, a.shards, a.counts.rows_per_split) == (
        b.config_hash, b.label_names, b.shards, b.counts.rows_per_split)


def _differing_columns(ours: Path, theirs: Path) -> list[str]:
    """What differs between two Parquet files: columns, else the file metadata."""
    import pyarrow.parquet as pq

    a, b = pq.read_table(ours), pq.read_table(theirs)
    columns = [c for c in a.column_names if c not in b.column_names or not a.column(c).equals(b.column(c))]
    return columns or ["(file metadata)"]
