"""An extraction starts without TensorFlow and prints only emoprep's own lines.

``python -X importtime`` lists every module the process imports (on stderr); the default modalities
load phonet's network (PyTorch) and MediaPipe (which would import TensorFlow if let), so any
TensorFlow or Keras import on their path shows up here - in Dask's worker processes too, which
multiprocessing starts with the parent's ``-X`` options and stderr.  Native log lines (absl's
``W0000 ...``, TensorFlow Lite's ``INFO: Created ...``) would appear on the same stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |INFO: |WARNING: |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: )|TensorFlow|XNNPACK|absl")


@pytest.mark.parametrize("where", [["--synchronous"], ["--workers", "1"]], ids=["in-process", "dask-worker"])
def test_extract_imports_no_tensorflow_and_prints_no_native_logs(where: list[str], small_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    cmd = [sys.executable, "-X", "importtime", "-m", "emoprep", "extract", "--dataset", "demo", "--root", str(small_demo),
           "--out", str(out), "--limit", "4", "--shard-size", "2", *where]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "manifest.json").is_file()
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "mediapipe" in imported and "torch" in imported  # the models did load in this process
    # importtime also lists attempts that failed: MediaPipe's blocked ``from tensorflow.tools.docs
    # import ...`` shows as tensorflow.tools(.docs) in microseconds.  No submodule can load without
    # its package, so the packages themselves must be absent.
    assert {"tensorflow", "keras", "tf_keras"} & set(imported) == set()
    assert {m for m in imported if m.startswith("tensorflow.")} <= {"tensorflow.tools", "tensorflow.tools.docs"}
    chatter = [line for line in (done.stderr + done.stdout).splitlines()
               if not line.startswith("import time:") and NATIVE_LOG.search(line)]
    assert chatter == []
