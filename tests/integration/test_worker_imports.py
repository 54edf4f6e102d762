"""An extraction starts without TensorFlow and prints only emoprep's own lines.

``python -X importtime`` lists every module the process imports (on stderr); the default modalities
load phonet's network (PyTorch) and MediaPipe (which would import TensorFlow if let), so any
TensorFlow or Keras import on their path shows up here - in Dask's worker processes too, which
multiprocessing starts with the parent's ``-X`` options and stderr.  Native log lines (absl's
``W0000 ...``, TensorFlow Lite's ``INFO: Created ...``) would appear on the same stderr.
"""

from __future__ import annotations

import os
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
    # start-up costs avoided (see test_worker_start_up_imports_only_what_it_uses)
    assert {"matplotlib", "numba", "librosa"} & set(imported) == set()
    chatter = [line for line in (done.stderr + done.stdout).splitlines()
               if not line.startswith("import time:") and NATIVE_LOG.search(line)]
    assert chatter == []


STARTUP = """
from emoprep.extraction.config import build_config
from emoprep.extraction.engine.worker import probe_extractors
probe_extractors(build_config("recordings", {"visual": {"au_backend": "none"}}))
"""

AVOIDED = {
    "matplotlib": "MediaPipe's drawing utilities (emoprep.extraction.faces.import_mediapipe loads solutions lazily)",
    "numba": "librosa's filters (the log-mel filterbank and window are computed with numpy)",
    "librosa": "the log-mel filterbank and window (emoprep.extraction.extractors.logmel.mel_filterbank)",
    "scipy.signal": "resample_poly, imported only when a decoded rate differs from the target rate",
    "mediapipe.tasks.python.audio": "MediaPipe's Tasks API (loaded lazily)",
    "tensorflow": "MediaPipe's optional import and phonet's Keras model",
}


def test_worker_start_up_imports_only_what_it_uses(tmp_path: Path) -> None:
    """A worker's start-up (``probe_extractors`` on the default pipeline, as bench_extract_720p.py
    measures it) imports none of the modules that used to cost it 1-2 CPU-s for nothing."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", STARTUP], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert {"torch", "mediapipe", "pysptk"} <= imported  # the models did load
    assert {m: why for m, why in AVOIDED.items() if m in imported} == {}
