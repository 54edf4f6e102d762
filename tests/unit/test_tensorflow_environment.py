"""phonet's posteriors (the 108 phonological features) must not depend on what the process did
before: with TensorFlow's oneDNN kernels they changed, by float32 rounding, once MediaPipe (which
imports TensorFlow) had been loaded first.  Both orders are run in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = """
import sys, numpy as np
if sys.argv[1] == "faces-first":
    from emoprep.faces import FaceDetector
    FaceDetector()
from emoprep.extractors.disvoice_lib import load_phonet
phon = load_phonet()
x = np.random.default_rng(0).normal(size=(8, 40, 34)).astype(np.float32)
np.save(sys.argv[2], np.concatenate([np.asarray(o).ravel() for o in phon.models(x, training=False)]))
"""


def test_phonet_gives_the_same_posteriors_whichever_library_loads_first(tmp_path: Path) -> None:
    outputs = {}
    for order in ("phonet-first", "faces-first"):
        path = tmp_path / f"{order}.npy"
        subprocess.run([sys.executable, "-c", SCRIPT, order, str(path)], check=True, capture_output=True, timeout=300)
        outputs[order] = np.load(path)
    assert outputs["phonet-first"].size > 0
    assert np.array_equal(outputs["phonet-first"], outputs["faces-first"])
