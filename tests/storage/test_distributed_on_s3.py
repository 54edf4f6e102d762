"""``torchrun --nproc_per_node 2 -m emoprep train`` with the shards and the run folder on S3: each rank
streams its own row groups from the bucket, the first one puts the run, the other fetches the best
weights back, and the numbers are those of the same two processes on the local copy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from emoprep.format.names import METRICS
from emoprep.format.storage import STORAGE_OPTIONS_ENV, Folder
from emoprep.testing.shards import build_shard_folder

pytestmark = pytest.mark.slow  # two torchruns of two processes: about a minute of CPU on 2 cores


def _torchrun(shards: str | Path, out: str | Path, env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "emoprep", "train", "lf-lstm", "--shards", str(shards), "--out", str(out),
           "--device", "cpu", "--quiet", "--set", "optim.epochs=2", "--set", "optim.batch_size=8", "--set", "settings.hidden=8"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_train_from_and_into_s3_as_from_the_local_copy(object_store, upload, tmp_path: Path) -> None:  # noqa: ANN001
    local = build_shard_folder(tmp_path / "s", {"train": 40, "valid": 20, "test": 20}, shard_size=20)
    url = upload(local, object_store.bucket() + "/s", object_store.options)
    run = object_store.bucket("runs") + "/run"
    _torchrun(local, tmp_path / "run", {})
    _torchrun(url, run, {STORAGE_OPTIONS_ENV: json.dumps(object_store.options)})
    remote = json.loads(Folder.of(run, object_store.options).read_text(METRICS))
    assert remote == json.loads((tmp_path / "run" / METRICS).read_text())
