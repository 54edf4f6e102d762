"""py-feat action units (``--au-backend pyfeat``), with weights fetched once and used offline.

Why this shape: py-feat ships no weights; its detectors download them from the Hugging Face hub
on first use, which fails on an offline worker after minutes of retries.  So:

* :func:`fetch_pyfeat_models` (CLI ``emoprep fetch-models pyfeat --dir D``) builds py-feat's
  detector once on a machine with internet, with the hub cache pointed at ``D``; exactly the files
  the chosen models need land there.
* At run time the hub is switched off (``HF_HUB_OFFLINE=1``) and py-feat's cache folder is pointed
  at ``au_options model_dir`` (default: py-feat's own ``resources`` folder, where a normal online
  first use leaves them).  :meth:`PyFeatBackend.check` builds the detector up front and turns a
  missing file into a :class:`SetupError` that says which command fetches it.

py-feat needs torch>=2.5 with a matching torchvision (CUDA builds, ~5.5 GB); it is not a
dependency of emoprep.  Add it to emoprep's environment as docs/pyfeat.md says (torch 2.14.1 with
numpy 1.26 runs DisVoice, mediapipe and py-feat together).

Mapping to the 35 OpenFace columns (:data:`PYFEAT_TO_OPENFACE`): py-feat's ``xgb``/``svm`` AU
models give a *presence probability* for 20 AUs (AU01 ... AU43), no intensities.  The 17 ``_r``
columns are therefore null, the ``_c`` columns of the 17 AUs both sets share (01 02 04 05 06 07 09
10 12 14 15 17 20 23 25 26 28) hold ``probability >= threshold`` as 0/1 (``threshold=0.5``; with
``threshold=none`` the raw probability is kept), and AU45_c (blink) is null: py-feat has no AU45.
py-feat's AU11, AU24 and AU43 have no OpenFace column and are dropped.

Which face: py-feat runs its own detector on the frame; the face whose box overlaps emoprep's
chosen face the most is used, so AUs describe the same person as the crop.  A frame gets ``None``
(null AUs) when emoprep found no face there (it is not sent to py-feat), when py-feat finds no face,
or when none of py-feat's faces overlaps emoprep's.

Offline for the whole run: loading *and* every ``detect()`` call run with the hub off and py-feat's
cache at ``model_dir``, because py-feat 2.x looks up some weights lazily inside ``detect()`` (its
landmarks-to-pose MLP, ``py-feat/pose_mlp_v2``, which the AU path does not need: its absence only
leaves py-feat's pose columns NaN).  Building the detector leaves torch's autograd switch as it was
(py-feat's RetinaFace turns it off process-wide).

Tested offline through py-feat's real code with random, test-only weights written in the hub-cache
layout (``tests/unit/_pyfeat_weights.py``); see ``docs/pyfeat.md``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterator

from ....errors import SetupError
from ...faces import FaceBox, iou
from .base import AU_NAMES, AUBackend, AURequest, AUVector, empty_vector

PYFEAT_AUS: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU11", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU28", "AU43",
)  # fmt: skip
PYFEAT_TO_OPENFACE: dict[str, str] = {
    a: f"{a}_c" for a in PYFEAT_AUS if f"{a}_c" in AU_NAMES
}
"""py-feat AU column -> OpenFace presence column; AU11, AU24, AU43 have none."""

DEFAULT_MODELS = {"face_model": "retinaface", "landmark_model": "mobilefacenet", "au_model": "xgb"}
INSTALL_HINT = (
    'add py-feat beside emoprep: pip install torch==2.14.1 torchvision==0.29.1 py-feat==2.1.5 "numpy<2" '
    '"scipy<1.12" "pandas<3" "setuptools<81" (see docs/pyfeat.md)'
)


def map_pyfeat_aus(row: dict[str, float], threshold: float | None = 0.5) -> AUVector:
    """35 OpenFace-order values from one py-feat result row (see the module docstring)."""
    out = empty_vector()
    for feat_name, of_name in PYFEAT_TO_OPENFACE.items():
        p = row.get(feat_name)
        if p is None or p != p:  # missing or NaN
            continue
        out[AU_NAMES.index(of_name)] = float(p) if threshold is None else float(p >= threshold)
    return out


@contextlib.contextmanager
def pyfeat_cache(model_dir: str | Path | None, offline: bool) -> Iterator[None]:
    """Point py-feat's hub cache at ``model_dir`` and (optionally) forbid network access.

    py-feat passes ``cache_dir=get_resource_path()`` to every download, so the cache folder can
    only be moved by replacing that function in the modules that imported it.
    """
    import sys

    saved_env = os.environ.get("HF_HUB_OFFLINE")
    patched: list[tuple[Any, Any]] = []
    try:
        if offline:
            os.environ["HF_HUB_OFFLINE"] = "1"
            _set_hub_offline(True)
        if model_dir is not None:
            import feat  # noqa: F401 - load every py-feat module that imported get_resource_path

            def get_resource_path() -> str:
                return str(model_dir)

            for name, module in list(sys.modules.items()):
                if (name == "feat" or name.startswith("feat.")) and hasattr(module, "get_resource_path"):
                    patched.append((module, module.get_resource_path))
                    module.get_resource_path = get_resource_path
        yield
    finally:
        for module, fn in patched:
            module.get_resource_path = fn
        if offline:
            if saved_env is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = saved_env
            _set_hub_offline(saved_env not in (None, "", "0", "false", "False"))


def _set_hub_offline(value: bool) -> None:
    """huggingface_hub reads HF_HUB_OFFLINE once at import; update its constant too."""
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = value
    except ImportError:
        pass


def build_detector(models: dict[str, str | None] | None = None) -> Any:
    """py-feat's detector with only face, landmark and AU models (no emotion/identity/gaze)."""
    import feat
    import torch

    cls = getattr(feat, "Detectorv1", None) or feat.Detector
    grad = torch.is_grad_enabled()
    try:
        with warnings.catch_warnings():
            # "retinaface does not regress 6DoF head pose": emoprep reads no pose from py-feat
            warnings.filterwarnings("ignore", message=".*does not regress 6DoF head pose", category=UserWarning)
            off = {"emotion_model": None, "identity_model": None, "gaze_model": None}
            return cls(**(models or DEFAULT_MODELS), **off, device="cpu")
    finally:
        torch.set_grad_enabled(grad)  # py-feat's RetinaFace switches autograd off process-wide


def fetch_pyfeat_models(dest: str | Path, models: dict[str, str | None] | None = None) -> list[str]:
    """Download the weights the AU backend needs into ``dest`` (run once, with internet).

    Returns the files now under ``dest``.  The lead's CLI exposes it as
    ``emoprep fetch-models pyfeat --dir DEST``; pass ``--au-option model_dir=DEST`` to runs.
    """
    dest = Path(dest).expanduser().resolve()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with pyfeat_cache(dest, offline=False):
            build_detector(models)
    except ImportError as exc:
        raise SetupError(f"py-feat is not importable ({exc}); {INSTALL_HINT}") from exc
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


class PyFeatBackend(AUBackend):
    """AU presences from py-feat's detector (see the module docstring for the mapping)."""

    name = "pyfeat"

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        self.model_dir = Path(options["model_dir"]).expanduser() if options.get("model_dir") else None
        t = options.get("threshold", "0.5")
        self.threshold = None if str(t).lower() == "none" else float(t)
        self.models = dict(DEFAULT_MODELS)
        if options.get("au_model"):
            self.models["au_model"] = options["au_model"]
        self._detector: Any = None

    def _load(self) -> Any:
        if self._detector is None:
            with pyfeat_cache(self.model_dir, offline=True):
                self._detector = build_detector(self.models)
        return self._detector

    def check(self) -> None:
        try:
            import feat  # noqa: F401
        except Exception as exc:  # ImportError, or torchvision's RuntimeError on a CPU-only torch
            raise SetupError(f"AU backend 'pyfeat' needs py-feat, which does not import here ({exc}); {INSTALL_HINT}") from exc
        if self.model_dir is not None and not self.model_dir.is_dir():
            raise SetupError(
                f"py-feat model folder {self.model_dir} does not exist: run "
                f"'emoprep fetch-models pyfeat --dir {self.model_dir}' on a machine with internet"
            )
        try:
            self._load()
        except Exception as exc:  # huggingface_hub's LocalEntryNotFoundError and friends
            where = self.model_dir or "py-feat's resources folder"
            raise SetupError(
                f"py-feat weights are missing from {where} ({type(exc).__name__}: {exc}); run "
                "'emoprep fetch-models pyfeat --dir DIR' on a machine with internet and pass "
                "--au-option model_dir=DIR"
            ) from exc

    def describe(self) -> dict[str, Any]:
        try:
            feat_version = version("py-feat")
        except PackageNotFoundError:
            feat_version = "not installed"
        return {
            "backend": "pyfeat",
            "py-feat": feat_version,
            "models": dict(self.models),
            "model_repos": ["py-feat/retinaface_r34", "py-feat/mobilefacenet", f"py-feat/{self.models['au_model']}_au"],
            "threshold": self.threshold,
            "mapping": {k: v for k, v in PYFEAT_TO_OPENFACE.items()},
            "null_columns": [n for n in AU_NAMES if n not in PYFEAT_TO_OPENFACE.values()],
        }

    def predict(self, request: AURequest) -> list[AUVector | None]:
        import cv2

        detector = self._load()
        todo = [i for i, f in enumerate(request.faces) if f is not None]
        out: list[AUVector | None] = [None] * len(request.frames)
        if not todo:
            return out
        with tempfile.TemporaryDirectory(prefix="emoprep-pyfeat-") as tmp:
            paths = []
            for i in todo:
                p = str(Path(tmp) / f"{i:06d}.png")
                cv2.imwrite(p, cv2.cvtColor(request.frames[i].rgb, cv2.COLOR_RGB2BGR))
                paths.append(p)
            # Offline and redirected here too, not only while loading: py-feat fetches some weights
            # lazily inside detect() (the landmarks-to-pose MLP, py-feat/pose_mlp_v2), and without
            # this each call would try the hub (5 tries with backoff per file) in py-feat's own folder.
            with pyfeat_cache(self.model_dir, offline=True):
                fex = detector.detect(paths, data_type="image", batch_size=len(paths), progress_bar=False)
        rows = fex.to_dict("records") if hasattr(fex, "to_dict") else list(fex)
        for i, path in zip(todo, paths):
            ours = request.faces[i]
            assert ours is not None
            # py-feat reports each face's source image in "input" (the path it was given).
            candidates = [r for r in rows if Path(str(r.get("input", ""))).name == Path(path).name]
            best = _best_overlap(candidates, ours)
            out[i] = map_pyfeat_aus(best, self.threshold) if best is not None else None
        return out


def _best_overlap(rows: list[dict[str, Any]], ours: FaceBox) -> dict[str, Any] | None:
    best, best_iou = None, 0.0
    for r in rows:
        try:
            box = FaceBox(float(r["FaceRectX"]), float(r["FaceRectY"]), float(r["FaceRectWidth"]), float(r["FaceRectHeight"]), 1.0)
        except (KeyError, TypeError, ValueError):
            continue
        o = iou(box, ours)
        if o > best_iou:
            best, best_iou = r, o
    return best
