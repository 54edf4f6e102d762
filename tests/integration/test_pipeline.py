"""The whole DAG on a small generated corpus: schedulers agree, runs resume, bad input is recorded."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from emoprep.extraction.config import build_config
from emoprep.errors import SetupError
from emoprep.extraction import run_extract
from emoprep.format.schema import utterance_schema

TEXT_ONLY = {"modalities": ["text"], "shard_size": 3}


@pytest.fixture(scope="module")
def glove_file(tmp_path_factory: pytest.TempPathFactory, small_demo: Path) -> Path:
    """A small GloVe file covering part of the demo's vocabulary (so some tokens are OOV)."""
    words = set()
    for f in (small_demo / "Raw/Transcript/Segmented/Combined").glob("*.txt"):
        for line in f.read_text().splitlines():
            words.update(line.split("___")[-1].replace(",", " ").replace(".", " ").split())
    words = sorted(words)[::2] + [",", ".", "n't", "'s"]
    rng = np.random.default_rng(0)
    lines = [w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=300)) for w in words]
    path = tmp_path_factory.mktemp("glove") / "tiny.300d.txt.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def _tables(out: Path) -> dict[str, object]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {s["file"]: pq.read_table(out / s["file"]) for s in manifest["shards"]}


def _assert_same_shards(a: Path, b: Path) -> None:
    ta, tb = _tables(a), _tables(b)
    assert ta.keys() == tb.keys() and ta
    for name in ta:
        assert ta[name].equals(tb[name]), name


def test_synchronous_and_local_cluster_write_identical_shards(small_demo: Path, glove_file: Path, tmp_path: Path) -> None:
    """Every modality, both schedulers: the bytes of the shards must not depend on where they ran."""
    cfg = build_config("demo", {"shard_size": 3, "modalities": ["text", "acoustic", "logmel", "visual"]})
    sync = run_extract(cfg, small_demo, tmp_path / "sync", glove=str(glove_file), synchronous=True)
    dist = run_extract(cfg, small_demo, tmp_path / "dist", glove=str(glove_file), workers=2)
    assert sync.complete and dist.complete
    assert "2 worker" in dist.executor and sync.executor == "synchronous"
    _assert_same_shards(tmp_path / "sync", tmp_path / "dist")
    ms = json.loads((tmp_path / "sync/manifest.json").read_text())
    md = json.loads((tmp_path / "dist/manifest.json").read_text())
    assert [s["sha256"] for s in ms["shards"]] == [s["sha256"] for s in md["shards"]]
    table = next(iter(_tables(tmp_path / "sync").values()))
    for column in ("glove", "acoustic", "logmel", "face_crops"):
        assert table.column(column).null_count == 0, column


def test_manifest_describes_the_run(small_demo: Path, glove_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_extract(build_config("demo", TEXT_ONLY), small_demo, out, glove=str(glove_file), synchronous=True)
    manifest = json.loads((out / "manifest.json").read_text())
    plan = pq.read_table(out / "utterances.parquet")
    assert manifest["counts"]["utterances"] == plan.num_rows == summary.utterances
    assert sum(s["rows"] for s in manifest["shards"]) == plan.num_rows
    for s in manifest["shards"]:
        data = (out / s["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == s["sha256"] and len(data) == s["bytes"]
        meta = pq.read_schema(out / s["file"]).metadata
        assert meta[b"emoprep.config_hash"].decode() == manifest["config_hash"]
        assert meta[b"emoprep.schema_version"] == b"1"
        assert json.loads(meta[b"emoprep.backends"])["text"]["backend"] == "glove"
    text = manifest["text"]
    assert text["vectors_written"] and 0 < text["oov_rate"] < 1
    table = pq.read_table(out / manifest["shards"][0]["file"])
    assert table.schema.equals(utterance_schema(), check_metadata=False)
    # OOV rate in the manifest is what the shards hold.
    all_rows = [t for t in _tables(out).values()]
    oov = sum(sum(sum(m) for m in t.column("glove_oov").to_pylist()) for t in all_rows)
    tokens = sum(sum(len(m) for m in t.column("tokens").to_pylist()) for t in all_rows)
    assert text["oov_tokens"] == oov and text["tokens"] == tokens
    # The vectors are the file's rows, zero where OOV.
    row = table.slice(0, 1).to_pylist()[0]
    vecs = np.asarray(row["glove"])
    assert vecs.shape == (len(row["tokens"]), 300)
    assert (np.abs(vecs).sum(axis=1) == 0).tolist() == row["glove_oov"]
    assert (out / "README.md").read_text().count("split:") == len({s["split"] for s in manifest["shards"]})
    non_null = manifest["counts"]["non_null_per_column"]
    assert non_null["utterance_id"] == plan.num_rows and non_null["acoustic"] == 0
    assert non_null["glove"] == sum(t.num_rows - t.column("glove").null_count for t in all_rows)


def test_without_glove_tokens_are_written_and_vectors_are_null(small_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_extract(build_config("demo", TEXT_ONLY), small_demo, out, synchronous=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary.glove is None and manifest["text"]["vectors_written"] is False
    assert manifest["text"]["oov_rate"] is None
    for t in _tables(out).values():
        assert t.column("glove").null_count == t.num_rows
        assert t.column("tokens").null_count == 0


def test_rerun_skips_complete_shards_and_overwrite_recomputes(small_demo: Path, tmp_path: Path) -> None:
    cfg = build_config("demo", TEXT_ONLY)
    out = tmp_path / "out"
    first = run_extract(cfg, small_demo, out, synchronous=True)
    again = run_extract(cfg, small_demo, out, synchronous=True)
    assert first.written == first.shards and again.skipped == again.shards and again.written == 0
    forced = run_extract(cfg, small_demo, out, synchronous=True, overwrite=True)
    assert forced.written == forced.shards
    other = build_config("demo", {**TEXT_ONLY, "text": {"drop_nonverbal": False}})
    with pytest.raises(SetupError, match="--overwrite"):  # never replaced silently (tests/integration/test_output_folder.py)
        run_extract(other, small_demo, out, synchronous=True)
    changed = run_extract(other, small_demo, out, synchronous=True, overwrite=True)
    assert changed.written == changed.shards, "a config change must never reuse old shards"


def test_damaged_shard_and_leftover_temp_files_are_repaired(small_demo: Path, tmp_path: Path) -> None:
    cfg = build_config("demo", TEXT_ONLY)
    out = tmp_path / "out"
    run_extract(cfg, small_demo, out, synchronous=True)
    clean = {n: t for n, t in _tables(out).items()}
    victim = sorted(clean)[0]
    (out / victim).write_bytes((out / victim).read_bytes()[:100])  # truncated by a crash or a copy
    (out / f".{victim}.tmp-999").write_bytes(b"partial")
    (out / "train-00007-of-00009.parquet").write_bytes(b"stale shard of an older plan")
    summary = run_extract(cfg, small_demo, out, synchronous=True)
    assert summary.written == 1 and summary.skipped == summary.shards - 1
    assert not list(out.glob(".*tmp-*")) and not (out / "train-00007-of-00009.parquet").exists()
    for name, table in _tables(out).items():
        assert table.equals(clean[name])


KILL_SCRIPT = """
import sys, time
import emoprep.extraction as pipeline
import emoprep.extraction.engine.worker as worker
from emoprep.extraction.config import build_config
original = worker.write_parts
def slow_write_parts(spec, job, parts):
    report = original(spec, job, parts)
    time.sleep(0.7)
    return report
worker.write_parts = slow_write_parts
pipeline.run_extract(build_config("demo", {"modalities": ["text"], "shard_size": 1}), sys.argv[1], sys.argv[2], synchronous=True)
"""


def test_killed_run_resumes_with_only_the_missing_shards(small_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(small_demo), str(out)], env=env)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and len(list(out.glob("*-of-*.parquet"))) < 3:
            time.sleep(0.05)
            assert proc.poll() is None, "the run finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*-of-*.parquet")}
    assert len(done_before) >= 3 and not (out / "manifest.json").exists()

    cfg = build_config("demo", {"modalities": ["text"], "shard_size": 1})
    resumed = run_extract(cfg, small_demo, out, synchronous=True)
    assert resumed.skipped == len(done_before)
    assert resumed.written == resumed.shards - len(done_before)
    for name, mtime in done_before.items():
        assert (out / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
    run_extract(cfg, small_demo, tmp_path / "clean", synchronous=True)
    _assert_same_shards(out, tmp_path / "clean")


def test_joins_an_existing_dask_cluster(small_demo: Path, tmp_path: Path) -> None:
    """--scheduler ADDRESS: the same DAG on a cluster emoprep did not start (here a local one)."""
    from distributed import LocalCluster

    cfg = build_config("demo", TEXT_ONLY)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = run_extract(cfg, small_demo, tmp_path / "remote", scheduler=cluster.scheduler_address)
    assert summary.complete and cluster.scheduler_address in summary.executor
    run_extract(cfg, small_demo, tmp_path / "local", synchronous=True)
    _assert_same_shards(tmp_path / "remote", tmp_path / "local")


def test_an_extractor_that_writes_nan_costs_one_row_its_columns(small_demo: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Validation is the last line of defence: NaN from a library must not reach a shard nor sink it."""
    import emoprep.extraction.engine.worker as worker
    from emoprep.extraction.extractors.base import Extractor

    class NanOnce(Extractor):
        name = "acoustic"
        columns = ("acoustic", "acoustic_onset_frames", "acoustic_valid")

        def describe(self) -> dict:
            return {"backend": "test"}

        def extract(self, media) -> dict:  # noqa: ANN001
            value = np.nan if media.utterance.utterance_id.endswith("_1") else 0.5
            return {"acoustic": np.full((2, 142), value, np.float32), "acoustic_onset_frames": [1, 1],
                    "acoustic_valid": [True, True]}

    cfg = build_config("demo", TEXT_ONLY)
    real = worker.extractors_for(cfg)
    monkeypatch.setattr(worker, "extractors_for", lambda config: (*real, NanOnce()))
    summary = run_extract(cfg, small_demo, tmp_path / "out", synchronous=True)
    assert summary.complete
    rows = {r["utterance_id"]: r for r in _tables_rows(tmp_path / "out")}
    bad = [u for u in rows if u.endswith("_1")]
    assert bad and all(rows[u]["acoustic"] is None and rows[u]["tokens"] for u in bad)
    assert all(rows[u]["acoustic"] is not None for u in rows if not u.endswith("_1"))
    failures = pq.read_table(tmp_path / "out" / "failures.parquet").to_pylist()
    assert {(f["utterance_id"], f["stage"], f["error_type"]) for f in failures} == {(u, "acoustic", "SchemaError") for u in bad}


def _tables_rows(out: Path) -> list[dict]:
    return [r for t in _tables(out).values() for r in t.to_pylist()]
