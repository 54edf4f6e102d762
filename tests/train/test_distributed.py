"""``torchrun --nproc_per_node 2 -m emoprep train``: DistributedDataParallel on CPU with gloo."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from emoprep import read_shards
from emoprep.testing.shards import build_shard_folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(shards: Path, out: Path, *sets: str, resume: bool = False) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "emoprep", "train", "lf-lstm", "--shards", str(shards), "--out", str(out),
           "--device", "cpu", "--quiet"]
    cmd += ["--resume"] if resume else [arg for s in sets for arg in ("--set", s)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _labelled(shards: Path, split: str) -> list[str]:
    rows = read_shards(shards, split=split, columns=["utterance_id", "emotions"]).to_pandas()
    return sorted(rows.loc[rows["emotions"].notna(), "utterance_id"])


def _epochs(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "cpu_seconds")} for line in (run / "history.jsonl").read_text().splitlines()]


TINY = ("optim.batch_size=8", "settings.hidden=8")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 40 train rows in shards of 20 = row groups of 16 and 4: the ranks get unequal batch counts
    return build_shard_folder(tmp_path_factory.mktemp("shards") / "s", {"train": 40, "valid": 20, "test": 20}, shard_size=20)


@pytest.fixture(scope="module")
def two_epochs(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    _torchrun(shards, out, "optim.epochs=2", *TINY)
    return out


def test_two_processes_train_one_model_and_score_every_row_once(shards: Path, two_epochs: Path) -> None:
    out = two_epochs
    run = json.loads((out / "run.json").read_text())
    assert run["processes"] == 2 and run["status"] == "complete"
    assert run["train_rows_labelled"] == len(_labelled(shards, "train"))  # every rank fits the featuriser on all of train
    preds = pd.read_parquet(out / "predictions.parquet")
    for split in ("valid", "test"):
        assert sorted(preds.loc[preds["split"] == split, "utterance_id"]) == _labelled(shards, split)  # each once, from both ranks
    assert [h["train_rows"] for h in _epochs(out)] == [len(_labelled(shards, "train"))] * 2  # written by rank 0 only


def test_spawned_loader_workers_read_every_row_once_across_ranks(tmp_path: Path) -> None:
    """Loader workers started by spawn have no process group: each must still read only its rank's
    share.  (No test split: each spawned worker imports torch, and test is read as valid is.)"""
    shards = build_shard_folder(tmp_path / "s", {"train": 40, "valid": 20}, shard_size=20)
    out = tmp_path / "run"
    _torchrun(shards, out, "optim.epochs=1", "data.workers=2", "data.start_method=spawn", *TINY)
    preds = pd.read_parquet(out / "predictions.parquet")
    assert sorted(preds["utterance_id"]) == _labelled(shards, "valid")  # once each, from both ranks' workers
    assert [h["train_rows"] for h in _epochs(out)] == [len(_labelled(shards, "train"))]


def test_resume_of_two_processes_is_exact(shards: Path, two_epochs: Path, tmp_path: Path) -> None:
    """Each rank draws its own dropout masks: each must get back its own RNG state.  The interruption
    after epoch 1: a one-epoch run whose last.pt is what an interrupted run's is, given one more epoch."""
    out = tmp_path / "run"
    _torchrun(shards, out, "optim.epochs=1", *TINY)
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["optim"]["epochs"] = 2
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (out / "metrics.json").unlink()
    _torchrun(shards, out, resume=True)
    assert _epochs(out) == _epochs(two_epochs)
    best, whole = (torch.load(run / "best.pt", weights_only=True) for run in (out, two_epochs))
    assert all(torch.equal(best[k], whole[k]) for k in whole)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"), pd.read_parquet(two_epochs / "predictions.parquet"))
