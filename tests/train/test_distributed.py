"""``torchrun --nproc_per_node 2 -m emoprep train``: DistributedDataParallel on CPU with gloo."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd

from emoprep import read_shards
from emoprep.testing.shards import build_shard_folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_model_and_score_every_row_once(tmp_path: Path) -> None:
    # 40 train rows in shards of 20 = row groups of 16 and 4: the ranks get unequal batch counts
    shards = build_shard_folder(tmp_path / "s", {"train": 40, "valid": 20, "test": 20}, shard_size=20)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "emoprep", "train", "lf-lstm", "--shards", str(shards), "--out", str(out),
           "--set", "optim.epochs=2", "--set", "optim.batch_size=8", "--set", "settings.hidden=8", "--device", "cpu", "--quiet"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["processes"] == 2 and run["status"] == "complete"
    preds = pd.read_parquet(out / "predictions.parquet")
    for split in ("valid", "test"):
        labelled = read_shards(shards, split=split, columns=["utterance_id", "emotions"]).to_pandas()
        expected = sorted(labelled.loc[labelled["emotions"].notna(), "utterance_id"])
        assert sorted(preds.loc[preds["split"] == split, "utterance_id"]) == expected  # each once, from both ranks
    assert len((out / "history.jsonl").read_text().splitlines()) == 2  # written by rank 0 only
