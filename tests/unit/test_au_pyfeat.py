"""py-feat AU backend: mapping, setup errors, and the adapter glue.

What runs where: the mapping and the adapter (frames -> py-feat call -> rows -> 35 columns) are
tested everywhere with a stand-in detector object.  The tests marked ``needs_pyfeat`` run py-feat's
real import and model loading offline; they skip unless py-feat imports (it lives in its own venv,
``.venv-pyfeat``, because it needs a CUDA build of torch 2.14.1 + torchvision).  Untested here: py-feat
inference with its real weights (they come from the Hugging Face hub, unreachable offline).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from emoprep.errors import SetupError
from emoprep.extractors.au import AU_NAMES, AURequest, build_au_backend
from emoprep.extractors.au.pyfeat import (
    PYFEAT_AUS,
    PYFEAT_TO_OPENFACE,
    PyFeatBackend,
    map_pyfeat_aus,
    pyfeat_cache,
)
from emoprep.extractors.face import FaceBox
from emoprep.media.video import Frame


def _pyfeat_importable() -> bool:
    if importlib.util.find_spec("feat") is None:
        return False
    try:
        import feat  # noqa: F401
    except Exception:
        return False
    return True


needs_pyfeat = pytest.mark.skipif(
    importlib.util.find_spec("feat") is None,
    reason="py-feat is not installed in this environment (it needs torch 2.14.1 + torchvision; see .venv-pyfeat)",
)


def test_mapping_covers_the_shared_aus_only() -> None:
    assert len(PYFEAT_AUS) == 20
    assert set(PYFEAT_TO_OPENFACE) == set(PYFEAT_AUS) - {"AU11", "AU24", "AU43"}
    row = {a: 0.1 * (k % 10) for k, a in enumerate(PYFEAT_AUS)} | {"AU12": 0.93, "AU45": 1.0}
    vec = map_pyfeat_aus(row)
    assert len(vec) == 35
    assert all(v is None for v in vec[:17])  # py-feat has no intensities
    assert vec[AU_NAMES.index("AU12_c")] == 1.0 and vec[AU_NAMES.index("AU01_c")] == 0.0
    assert vec[AU_NAMES.index("AU45_c")] is None  # no blink AU in py-feat
    assert map_pyfeat_aus(row, threshold=None)[AU_NAMES.index("AU12_c")] == pytest.approx(0.93)
    assert map_pyfeat_aus({"AU12": float("nan")})[AU_NAMES.index("AU12_c")] is None


class FakeFex:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def to_dict(self, orient: str) -> list[dict]:
        assert orient == "records"
        return self.rows


class FakeDetector:
    """Answers like py-feat's detect(): one row per face, 'input' = the image path it was given."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def detect(self, paths: list[str], data_type: str, batch_size: int, progress_bar: bool) -> FakeFex:
        import cv2

        assert data_type == "image" and batch_size == len(paths)
        self.calls.append(paths)
        rows = []
        for p in paths:
            img = cv2.imread(p)
            assert img is not None and img.shape == (60, 80, 3)
            # two faces: the one emoprep chose (left) smiles, a bystander (right) does not
            rows.append({"input": p, "FaceRectX": 5, "FaceRectY": 5, "FaceRectWidth": 20, "FaceRectHeight": 20, "AU12": 0.9})
            rows.append({"input": p, "FaceRectX": 50, "FaceRectY": 5, "FaceRectWidth": 20, "FaceRectHeight": 20, "AU12": 0.1})
        return FakeFex(rows)


def test_adapter_uses_the_face_emoprep_chose() -> None:
    backend = PyFeatBackend({})
    backend._detector = FakeDetector()
    frames = [Frame(t, np.zeros((60, 80, 3), np.uint8)) for t in (0.0, 0.5, 1.0)]
    faces = [FaceBox(4, 6, 20, 20, 0.9), None, FaceBox(48, 4, 22, 22, 0.9)]
    out = backend.predict(AURequest("u", "v", None, None, frames, faces))
    assert out[1] is None and len(backend._detector.calls[0]) == 2  # frames without a face are not sent
    assert out[0][AU_NAMES.index("AU12_c")] == 1.0
    assert out[2][AU_NAMES.index("AU12_c")] == 0.0
    d = backend.describe()
    assert d["backend"] == "pyfeat" and "AU45_c" in d["null_columns"] and d["threshold"] == 0.5


def test_check_without_pyfeat_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_feat(name: str, *args: object, **kwargs: object) -> object:
        if name == "feat" or name.startswith("feat."):
            raise ImportError("No module named 'feat'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_feat)
    with pytest.raises(SetupError, match="pip install .*py-feat"):
        build_au_backend("pyfeat", {}).check()


def test_check_with_missing_model_dir(tmp_path: Path) -> None:
    if not _pyfeat_importable():
        pytest.skip("py-feat is not importable here: the model folder check runs after the import check")
    with pytest.raises(SetupError, match="fetch-models pyfeat"):
        PyFeatBackend({"model_dir": str(tmp_path / "absent")}).check()


@needs_pyfeat
@pytest.mark.slow
def test_real_pyfeat_offline_reports_missing_weights(tmp_path: Path) -> None:
    """py-feat's own loader, offline, against an empty model folder: a SetupError, fast, no retries."""
    import time

    t0 = time.time()
    with pytest.raises(SetupError, match="fetch-models pyfeat --dir DIR"):
        PyFeatBackend({"model_dir": str(tmp_path)}).check()
    assert time.time() - t0 < 60  # HF_HUB_OFFLINE=1: no 5x backoff retries per file


@needs_pyfeat
def test_cache_redirect_patches_and_restores(tmp_path: Path) -> None:
    import os

    import feat.detector as det
    import feat.utils.io as io

    original = io.get_resource_path()
    before = os.environ.get("HF_HUB_OFFLINE")
    with pyfeat_cache(tmp_path, offline=True):
        assert det.get_resource_path() == str(tmp_path) == io.get_resource_path()
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert io.get_resource_path() == original and os.environ.get("HF_HUB_OFFLINE") == before
