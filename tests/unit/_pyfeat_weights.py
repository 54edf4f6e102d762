"""Test-only, random-weight stand-ins for the py-feat models the ``pyfeat`` AU backend loads.

py-feat 2.x downloads its weights from the Hugging Face hub, which tests cannot reach.  This module
writes files of the same names, formats and architectures into a folder laid out like a hub cache
(``models--py-feat--<repo>/refs/main`` + ``snapshots/<commit>/<file>``), the folder the adapter's
``model_dir`` option points py-feat at.  py-feat then loads them offline through its own code:

* ``py-feat/retinaface_r34/model.safetensors``: py-feat's own ``RetinaFace(RETINAFACE_R34_CFG)``
  (ResNet34 + FPN + SSH + heads), random init, its state dict as safetensors; py-feat loads it with
  ``safetensors.torch.load_file`` + ``load_state_dict(strict=True)``.
* ``py-feat/mobilefacenet/mobilefacenet_model_best.pth.tar``: py-feat's ``MobileFaceNet([112, 112],
  136)``, random init, saved as ``torch.save({"state_dict": ...})``; loaded with
  ``torch.load(weights_only=True)["state_dict"]``.
* ``py-feat/xgb_au/xgb_au_classifier_v2.skops``: py-feat's ``XGBClassifier`` wrapper holding
  sklearn ``StandardScaler`` + ``PCA`` for the upper/lower/full face and 20 ``xgboost.XGBClassifier``
  fit on noise, written with ``skops.io.dump``; loaded with ``skops.io.load(trusted=
  get_untrusted_types(file=...))``.
* ``py-feat/svm_au/svm_au_classifier_v2.skops`` (``au_model='svm'``): py-feat's ``SVMClassifier``
  wrapper, the same scalers/PCAs and 20 sklearn ``LinearSVC``.

Values are meaningless by design; two parts are biased so the pipeline has something to work on:

* the face detector's class and box heads are zeroed, with a class bias that calls every anchor of
  one size (``face_anchor``) a face with probability ~1 (or none at all, ``faces=False``), so py-feat
  reports a deterministic grid of prior boxes on any image;
* the landmark net's last BatchNorm has zero scale and py-feat's own neutral 68-point face
  (``resources/neutral_face_coordinates.csv``) as bias, so landmarks are a plausible face shape and the
  HOG/alignment stage gets valid input.

py-feat, torch, sklearn, xgboost and skops are imported inside the functions, so this module imports
anywhere; calling the writers needs py-feat's environment.  Writing all files takes a few seconds
(~90 MB, mostly the ResNet34 detector).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COMMIT = "0123456789abcdef0123456789abcdef01234567"
"""Fake hub revision: ``refs/main`` points at it; files live under ``snapshots/<COMMIT>/``."""

FILES = {
    "retinaface": ("py-feat/retinaface_r34", "model.safetensors"),
    "mobilefacenet": ("py-feat/mobilefacenet", "mobilefacenet_model_best.pth.tar"),
    "xgb": ("py-feat/xgb_au", "xgb_au_classifier_v2.skops"),
    "svm": ("py-feat/svm_au", "svm_au_classifier_v2.skops"),
}
AU_KEYS = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU11", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU28", "AU43",
)  # fmt: skip


def hub_file(cache: Path, repo_id: str, filename: str) -> Path:
    """Where ``hf_hub_download(repo_id, filename, cache_dir=cache)`` finds a file offline."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    path = repo / "snapshots" / COMMIT / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_retinaface(
    path: Path, faces: bool = True, face_anchor: tuple[int, int] = (2, 1), seed: int = 0
) -> None:
    """py-feat's RetinaFace-R34, random backbone; heads biased (see the module docstring).

    ``face_anchor`` = (FPN level, anchor index): (2, 1) is the 512-px anchor on the stride-32 level: a few
    overlapping boxes per image (after py-feat's NMS), few enough to keep the test fast.
    """
    import torch
    from feat.face_detectors.Retinaface.Retinaface_model import RETINAFACE_R34_CFG, RetinaFace
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    net = RetinaFace(RETINAFACE_R34_CFG)
    n_anchors = RETINAFACE_R34_CFG["num_anchors"]
    with torch.no_grad():
        for level, conv in enumerate(net.ClassHead._convs):
            conv.weight.zero_()
            bias = torch.tensor([8.0, -8.0] * n_anchors)  # (not-face, face) logits per anchor
            if faces and level == face_anchor[0]:
                bias[2 * face_anchor[1] : 2 * face_anchor[1] + 2] = torch.tensor([-8.0, 8.0])
            conv.bias.copy_(bias)
        for conv in net.BboxHead._convs:  # boxes = the anchors themselves
            conv.weight.zero_()
            conv.bias.zero_()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))


def neutral_landmarks() -> np.ndarray:
    """py-feat's neutral 68-point face, scaled into [0.15, 0.85] of a face crop: (68, 2)."""
    import pandas as pd
    from feat.utils.io import get_resource_path

    pts = pd.read_csv(Path(get_resource_path()) / "neutral_face_coordinates.csv").to_numpy(np.float32)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return 0.15 + 0.7 * (pts - lo) / (hi - lo).max()


def write_mobilefacenet(path: Path, seed: int = 0) -> None:
    """py-feat's MobileFaceNet landmark net, random init, output pinned to the neutral face."""
    import torch
    from feat.landmark_detectors.mobilefacenet_test import MobileFaceNet

    torch.manual_seed(seed)
    net = MobileFaceNet([112, 112], 136)
    with torch.no_grad():
        bn = net.output_layer.bn
        bn.weight.zero_()
        bn.bias.copy_(torch.from_numpy(neutral_landmarks().reshape(-1)))  # x0, y0, x1, y1, ...
    torch.save({"state_dict": net.state_dict()}, str(path))


def hog_samples(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """py-feat's own HOG + aligned-landmark features of ``n`` random-noise 112-px face crops.

    Fitting the scalers, PCAs and boosters on these (rather than on N(0, 1) noise) keeps their splits
    inside the range real crops produce, so predictions differ from face to face.
    """
    import torch
    from feat.utils.face_mask import extract_hog_features_batched
    from feat.utils.image_operations import HOGLayer

    torch.manual_seed(seed)
    layer = HOGLayer(
        orientations=8,
        pixels_per_cell=8,
        cells_per_block=2,
        block_normalization="L2-Hys",
        feature_vector=True,
    )
    lm = torch.from_numpy(neutral_landmarks().reshape(1, -1)).repeat(n, 1)
    lm = lm + 0.02 * torch.randn_like(lm)
    hog, aligned = extract_hog_features_batched(torch.rand(n, 3, 112, 112), lm, hog_layer=layer)
    aligned = np.concatenate([np.asarray(a).reshape(-1, 136) for a in aligned]).reshape(n, 136)
    return np.asarray(hog, dtype=np.float32), aligned.astype(np.float32)


def _region_models(n_samples: int, n_components: int, seed: int) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """Scaler + PCA per face region, fit on py-feat's HOG of noise crops (shared by both AU wrappers),
    and the features the classifiers see: PCA of the HOG + the 136 landmark coordinates."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    hog, landmarks = hog_samples(n_samples, seed)
    parts: dict[str, object] = {}
    features = {}
    for region in ("upper", "lower", "full"):
        scaler = StandardScaler().fit(hog)
        pca = PCA(n_components=n_components, random_state=seed).fit(scaler.transform(hog))
        parts[f"scaler_{region}"], parts[f"pca_model_{region}"] = scaler, pca
        features[region] = np.concatenate([pca.transform(scaler.transform(hog)), landmarks], axis=1)
    return parts, features


def write_xgb_au(path: Path, seed: int = 0, n_components: int = 8, n_samples: int = 32) -> None:
    """py-feat's XGB AU wrapper with scalers, PCAs and 20 tiny boosters fit on noise, via skops."""
    import xgboost
    from feat.au_detectors.StatLearning.SL_test import XGBClassifier
    from skops.io import dump

    parts, features = _region_models(n_samples, n_components, seed)
    rng = np.random.default_rng(seed)
    classifiers = {}
    for k, key in enumerate(AU_KEYS):
        y = rng.permutation(np.arange(n_samples) % 2)
        clf = xgboost.XGBClassifier(n_estimators=4, max_depth=2, random_state=seed + k, n_jobs=1)
        classifiers[key] = clf.fit(features["full"], y)
    model = XGBClassifier()
    model.load_weights(**parts, classifiers=classifiers)
    dump(model, str(path))


def write_svm_au(path: Path, seed: int = 0, n_components: int = 8, n_samples: int = 32) -> None:
    """py-feat's SVM AU wrapper (``au_model='svm'``): the same scalers/PCAs, 20 LinearSVCs on noise."""
    import warnings

    from feat.au_detectors.StatLearning.SL_test import SVMClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC
    from skops.io import dump

    parts, features = _region_models(n_samples, n_components, seed)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # labels are noise; no optimum needed
        classifiers = {
            key: LinearSVC(random_state=seed).fit(features["full"], rng.permutation(np.arange(n_samples) % 2))
            for key in AU_KEYS
        }
    model = SVMClassifier()
    model.load_weights(**parts, classifiers=classifiers)
    dump(model, str(path))


def write_pyfeat_models(
    cache: Path, faces: bool = True, seed: int = 0, au_models: tuple[str, ...] = ("xgb",)
) -> list[Path]:
    """All files ``Detectorv1(face_model='retinaface', landmark_model='mobilefacenet', au_model=M)``
    needs for each M in ``au_models``, under ``cache``; returns their paths.

    ``faces=False``: a face detector that never finds a face.
    """
    cache = Path(cache)
    writers = {
        "retinaface": lambda p: write_retinaface(p, faces=faces, seed=seed),
        "mobilefacenet": lambda p: write_mobilefacenet(p, seed=seed),
        "xgb": lambda p: write_xgb_au(p, seed=seed),
        "svm": lambda p: write_svm_au(p, seed=seed),
    }
    written = []
    for model in ("retinaface", "mobilefacenet", *au_models):
        path = hub_file(cache, *FILES[model])
        writers[model](path)
        written.append(path)
    return written
