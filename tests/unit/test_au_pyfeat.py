"""py-feat AU backend: mapping, setup errors, and the adapter run through py-feat's real code.

What runs where:

* everywhere: the mapping, and the adapter glue with a stand-in detector object;
* where py-feat imports (installed beside emoprep as docs/pyfeat.md says; CI does so): the
  adapter end to end through py-feat 2.x's real code, offline.  ``_pyfeat_weights`` writes random,
  test-only weights for py-feat's own architectures (RetinaFace-R34, MobileFaceNet, the XGB/SVM AU
  classifiers) in the hub-cache layout under a temporary ``model_dir``; py-feat loads them with
  ``hf_hub_download`` (``HF_HUB_OFFLINE=1``), detects faces, predicts landmarks, HOG features and AU
  probabilities on the astronaut photo, and the adapter maps them to the 35 OpenFace columns.  The
  values are meaningless, so these tests assert structure and mapping, never values.

Untested here: py-feat's *released* weights (hub only), hence whether its real detector finds the
same face as MediaPipe and how good its AU probabilities are; the ``fetch-models`` download itself
(needs the hub); py-feat's pose MLP, emotion, identity and gaze models (the adapter switches them
off, or, for pose, never has their weights).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from emoprep.errors import SetupError
from emoprep.extraction.extractors.au import AU_NAMES, AURequest, build_au_backend
from emoprep.extraction.extractors.au.pyfeat import (
    PYFEAT_AUS,
    PYFEAT_TO_OPENFACE,
    PyFeatBackend,
    map_pyfeat_aus,
    pyfeat_cache,
)
from emoprep.extraction.faces import FaceBox, iou
from emoprep.extraction.media.video import Frame


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
    reason="py-feat is not installed in this environment (it needs torch 2.14.1 + torchvision; see docs/pyfeat.md)",
)
PYFEAT_SKIP = (
    "py-feat is not importable in this environment (it needs torch 2.14.1 + torchvision installed "
    "beside emoprep: see docs/pyfeat.md)"
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
    from feat.utils import io

    original = io.get_resource_path()
    before = os.environ.get("HF_HUB_OFFLINE")
    with pyfeat_cache(tmp_path, offline=True):
        assert det.get_resource_path() == str(tmp_path) == io.get_resource_path()
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert io.get_resource_path() == original and os.environ.get("HF_HUB_OFFLINE") == before


# --------------------------------------------------------------------------------------------------
# py-feat's real code, offline, on generated random weights (see _pyfeat_weights)


@pytest.fixture(scope="module")
def pyfeat_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two model folders: ``faces`` (a detector that finds faces everywhere) and ``no_faces``."""
    if not _pyfeat_importable():
        pytest.skip(PYFEAT_SKIP)
    import shutil

    from _pyfeat_weights import FILES, hub_file, write_pyfeat_models, write_retinaface

    faces = tmp_path_factory.mktemp("pyfeat-models")
    write_pyfeat_models(faces, au_models=("xgb", "svm"))
    no_faces = tmp_path_factory.mktemp("pyfeat-models-noface")
    shutil.copytree(faces, no_faces, dirs_exist_ok=True)
    write_retinaface(hub_file(no_faces, *FILES["retinaface"]), faces=False)
    return {"faces": faces, "no_faces": no_faces}


def _astronaut_frames(n: int) -> list[Frame]:
    """``n`` frames of the astronaut photo (a real face at about (78, 83, 95, 95)), slightly varied."""
    from _visual_media import astronaut_face

    img = astronaut_face()
    return [Frame(0.5 * k, np.ascontiguousarray(np.roll(img, 7 * k, axis=1))) for k in range(n)]


def _rows_by_image(detector: object, frames: list[Frame], tmp_path: Path, model_dir: Path) -> list[list[dict]]:
    """py-feat's own rows per frame, from a direct detect() call (the reference for the adapter)."""
    import cv2

    paths = []
    for k, f in enumerate(frames):
        p = str(tmp_path / f"ref{k}.png")
        cv2.imwrite(p, cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR))
        paths.append(p)
    detect = detector.detect  # type: ignore[attr-defined]
    with pyfeat_cache(model_dir, offline=True):  # hermetic: py-feat looks up weights inside detect()
        fex = detect(paths, data_type="image", batch_size=len(paths), progress_bar=False)
    rows = fex.to_dict("records")
    return [[r for r in rows if r["input"] == p] for p in paths]


def _box(row: dict) -> FaceBox:
    return FaceBox(row["FaceRectX"], row["FaceRectY"], row["FaceRectWidth"], row["FaceRectHeight"], 1.0)


def _assert_contract(vec: list, probabilities: bool) -> None:
    assert len(vec) == len(AU_NAMES) == 35
    mapped = {AU_NAMES.index(c) for c in PYFEAT_TO_OPENFACE.values()}
    assert len(mapped) == 17
    for k, v in enumerate(vec):
        if k not in mapped:  # the 17 intensities and AU45_c
            assert v is None, AU_NAMES[k]
        elif probabilities:
            assert isinstance(v, float) and 0.0 <= v <= 1.0, (AU_NAMES[k], v)
        else:
            assert v in (0.0, 1.0), (AU_NAMES[k], v)


@pytest.mark.parametrize("au_model", ["xgb", "svm"])
def test_real_pyfeat_end_to_end_on_generated_weights(
    pyfeat_models: dict[str, Path], tmp_path: Path, au_model: str
) -> None:
    """check() loads the generated files through py-feat's hub loader; predict() runs py-feat's
    detector, landmarks, HOG and AU classifier, and returns 35 OpenFace-order values per frame."""
    import torch

    grad = torch.is_grad_enabled()
    options = {"model_dir": str(pyfeat_models["faces"]), "threshold": "none"}
    if au_model != "xgb":
        options["au_model"] = au_model
    backend = build_au_backend("pyfeat", options)
    assert isinstance(backend, PyFeatBackend)
    backend.check()
    detector = backend._detector
    assert type(detector).__name__ == "Detectorv1"
    assert detector.info["face_model"] == "retinaface" and detector.info["au_model"] == au_model
    assert detector.emotion_detector is None and detector.identity_detector is None
    assert detector.gaze_detector is None
    assert torch.is_grad_enabled() == grad  # py-feat's RetinaFace turns autograd off; the adapter restores it

    frames = _astronaut_frames(4)
    reference = _rows_by_image(detector, frames, tmp_path, pyfeat_models["faces"])
    assert all(len(rows) >= 2 for rows in reference)  # the biased detector reports several boxes
    assert all(set(PYFEAT_AUS) <= set(rows[0]) for rows in reference)
    # Our face per frame: the astronaut's real face box; frame 1 has none (emoprep found no face);
    # frame 3 uses exactly one of py-feat's boxes, so the adapter must return that row's values.
    pick = reference[3][len(reference[3]) // 2]
    faces = [FaceBox(78, 83, 95, 95, 0.9), None, FaceBox(90, 80, 95, 100, 0.9), _box(pick)]
    out = backend.predict(AURequest("u", "v", None, None, frames, faces))

    assert len(out) == 4 and out[1] is None
    for k in (0, 2, 3):
        vec = out[k]
        assert vec is not None
        _assert_contract(vec, probabilities=au_model == "xgb")
        # the adapter's row is the py-feat face overlapping ours the most
        best = max(reference[k], key=lambda r: iou(_box(r), faces[k]))  # first of equals, like the adapter
        assert vec == map_pyfeat_aus(best, threshold=None)
    assert out[3] == map_pyfeat_aus(pick, threshold=None)
    for feat_name, of_name in PYFEAT_TO_OPENFACE.items():  # the column mapping, on real py-feat output
        assert out[3][AU_NAMES.index(of_name)] == pytest.approx(float(pick[feat_name]))

    # threshold 0.5 (the default): presences 0/1, the same detections
    backend_05 = PyFeatBackend({k: v for k, v in options.items() if k != "threshold"})
    backend_05._detector = detector
    out_05 = backend_05.predict(AURequest("u", "v", None, None, frames, faces))
    assert out_05[1] is None
    for k in (0, 2, 3):
        _assert_contract(out_05[k], probabilities=False)
        best = max(reference[k], key=lambda r: iou(_box(r), faces[k]))
        assert out_05[k] == map_pyfeat_aus(best, threshold=0.5)


def test_real_pyfeat_without_a_face_gives_null_aus(pyfeat_models: dict[str, Path], tmp_path: Path) -> None:
    """py-feat finds no face: it returns a placeholder row (NaN box and AUs); the adapter returns None."""
    backend = PyFeatBackend({"model_dir": str(pyfeat_models["no_faces"])})
    backend.check()
    frames = _astronaut_frames(2)
    reference = _rows_by_image(backend._detector, frames, tmp_path, pyfeat_models["no_faces"])
    assert [len(rows) for rows in reference] == [1, 1]
    assert all(np.isnan(rows[0]["FaceRectX"]) and np.isnan(rows[0]["AU12"]) for rows in reference)
    out = backend.predict(AURequest("u", "v", None, None, frames, [FaceBox(78, 83, 95, 95, 0.9)] * 2))
    assert out == [None, None]


def test_real_pyfeat_face_elsewhere_gives_null_aus(pyfeat_models: dict[str, Path]) -> None:
    """py-feat's faces do not overlap ours at all: no AUs rather than another person's."""
    backend = PyFeatBackend({"model_dir": str(pyfeat_models["faces"])})
    frames = _astronaut_frames(1)
    out = backend.predict(AURequest("u", "v", None, None, frames, [FaceBox(5000, 5000, 20, 20, 0.9)]))
    assert out == [None]


def test_real_pyfeat_describe_names_what_was_loaded(pyfeat_models: dict[str, Path]) -> None:
    from importlib.metadata import version

    backend = PyFeatBackend({"model_dir": str(pyfeat_models["faces"])})
    backend.check()
    d = backend.describe()
    assert d["backend"] == "pyfeat" and d["py-feat"] == version("py-feat")
    assert d["models"] == {"face_model": "retinaface", "landmark_model": "mobilefacenet", "au_model": "xgb"}
    assert {v for k, v in backend._detector.info.items() if k in d["models"]} == set(d["models"].values())
    # every hub repo named in the manifest is one py-feat loaded from model_dir, and vice versa
    folders = pyfeat_models["faces"].glob("models--*")
    loaded = sorted(p.name.removeprefix("models--").replace("--", "/") for p in folders)
    assert sorted(d["model_repos"]) == sorted(r for r in loaded if r != "py-feat/svm_au")
    assert d["null_columns"] == [n for n in AU_NAMES if n.endswith("_r")] + ["AU45_c"]
    assert d["threshold"] == 0.5


def test_real_pyfeat_predict_stays_offline_and_in_model_dir(
    pyfeat_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """py-feat fetches some weights lazily inside detect() (its pose MLP): that lookup must be
    offline and in model_dir too, even on a worker where HF_HUB_OFFLINE is not set."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    backend = PyFeatBackend({"model_dir": str(pyfeat_models["faces"])})
    backend.check()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    real = huggingface_hub.hf_hub_download
    calls: list[tuple[str, str, bool]] = []

    def spy(repo_id: str, filename: str, **kwargs: object) -> str:
        offline = bool(constants.HF_HUB_OFFLINE)
        calls.append((repo_id, str(kwargs.get("cache_dir")), offline))
        if not offline:  # never reach for the network from a test
            raise LocalEntryNotFoundError(f"test: {repo_id}/{filename} requested online")
        return real(repo_id, filename, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    frames, faces = _astronaut_frames(1), [FaceBox(78, 83, 95, 95, 0.9)]
    out = backend.predict(AURequest("u", "v", None, None, frames, faces))
    assert out[0] is not None
    assert calls, "py-feat 2.1.5 looks up py-feat/pose_mlp_v2 inside detect(); did that change?"
    assert all(cache == str(pyfeat_models["faces"]) and offline for _, cache, offline in calls), calls
    assert constants.HF_HUB_OFFLINE is False  # restored after the call


def test_real_pyfeat_through_the_whole_pipeline(pyfeat_models: dict[str, Path], small_demo: Path, tmp_path: Path) -> None:
    """``emoprep extract --au-backend pyfeat --au-option model_dir=DIR``: MediaPipe finds the faces,
    py-feat's real code computes AUs on them, the shard holds 35 OpenFace-order values per frame.
    Runs where py-feat is installed beside emoprep (see docs/pyfeat.md)."""
    import json

    import pyarrow.parquet as pq

    from emoprep.extraction.config import build_config
    from emoprep.extraction import run_extract
    from emoprep.extraction.extractors.au import AU_NAMES

    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("mediapipe is not installed beside py-feat here")
    cfg = build_config(
        "demo",
        {"modalities": ["visual"], "shard_size": 16,
         "visual": {"au_backend": "pyfeat", "au_options": {"model_dir": str(pyfeat_models["faces"])}}},
    )
    summary = run_extract(cfg, small_demo, tmp_path / "out", synchronous=True, limit=3)
    assert summary.complete and summary.failure_records == 0
    table = pq.read_table(next((tmp_path / "out").glob("*-of-*.parquet")))
    intensities = [i for i, n in enumerate(AU_NAMES) if n.endswith("_r")]
    for row in table.to_pylist():
        for aus, missing in zip(row["aus"], row["face_missing"]):
            assert len(aus) == 35
            if missing is None:
                assert all(aus[i] is None for i in intensities)  # py-feat has no intensities
                assert {v for v in aus if v is not None} <= {0.0, 1.0}
    backends = json.loads(table.schema.metadata[b"emoprep.backends"])["visual"]
    assert backends["au_backend"] == "pyfeat"
