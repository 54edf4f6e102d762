"""The demo's labels must be learnable from its media: each emotion has its own voice (rate, pitch,
volume) and its own look (colour cast, zoom, and a face shape: aspect ratio and head tilt).  A
leave-one-out nearest-neighbour classifier on simple summaries of the extracted features must beat
chance by far, from audio alone, from face crops alone and from face-mesh landmarks alone (with
position, scale, colour and brightness normalised away, as a landmark model sees them)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from emoprep.extraction.config import build_config
from emoprep.extraction.readers.demo.reader import demo_root
from emoprep.extraction import run_extract
from emoprep.format.reader import read_shards


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("demo-learn") / "shards"
    cfg = build_config("demo", {"modalities": ["logmel", "visual"], "shard_size": 16})
    summary = run_extract(cfg, demo_root(), out, synchronous=True)
    assert summary.complete and summary.failure_records == 0
    return read_shards(out).to_pylist()


def _single_label(rows: list[dict]) -> tuple[list[dict], np.ndarray]:
    """Utterances with at most one emotion; class 6 = no emotion (the demo's neutral clips)."""
    kept, y = [], []
    for r in rows:
        hot = np.flatnonzero(r["emotions"])
        if len(hot) <= 1:
            kept.append(r)
            y.append(int(hot[0]) if len(hot) else 6)
    return kept, np.asarray(y)


def _loo_1nn(x: np.ndarray, y: np.ndarray, standardise: bool = True) -> float:
    if standardise:
        x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((y[d.argmin(1)] == y).mean())


def _face_colour(r: dict) -> np.ndarray:
    crops = [np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB"), dtype=np.float32) for c in r["face_crops"] if c]
    return np.mean([c.reshape(-1, 3).mean(0) for c in crops], axis=0)


def _landmarks(r: dict) -> np.ndarray:
    """Time-averaged face mesh, each frame centred on its centroid and divided by its RMS radius."""
    shapes = []
    for m in r["face_mesh"]:
        if m is not None:
            p = np.asarray(m, dtype=np.float32).reshape(468, 3)
            p -= p.mean(0)
            shapes.append(p / np.sqrt((p**2).sum(1).mean()))
    return np.mean(shapes, axis=0).reshape(-1)


def _voice(r: dict) -> np.ndarray:
    chunks = np.asarray(r["logmel"], dtype=np.float32).reshape(-1, 128, 32)
    frames = np.concatenate([c[:, :n] for c, n in zip(chunks, r["logmel_frames"])], axis=1)
    loud = frames[:, frames.mean(0) > np.percentile(frames.mean(0), 50)]  # voiced-ish frames only
    return np.concatenate([loud.mean(1), [frames.max()]])


def test_emotions_are_learnable_from_faces_and_from_voices(rows: list[dict]) -> None:
    kept, y = _single_label(rows)
    assert len(set(y)) == 7 and len(kept) >= 25
    chance = np.bincount(y).max() / len(y)
    face_acc = _loo_1nn(np.stack([_face_colour(r) for r in kept]), y)
    voice_acc = _loo_1nn(np.stack([_voice(r) for r in kept]), y)
    print(f"chance {chance:.2f}  faces {face_acc:.2f}  voices {voice_acc:.2f}")
    assert face_acc >= 0.9
    assert voice_acc >= max(0.5, 3 * chance)


def test_faces_are_found_and_emotions_are_learnable_from_landmarks(rows: list[dict]) -> None:
    frames = sum(len(r["face_missing"]) for r in rows)
    with_face = sum(m is None for r in rows for m in r["face_missing"])
    with_mesh = sum(m is not None for r in rows for m in r["face_mesh"])
    assert with_face >= 0.95 * frames and with_mesh >= 0.95 * frames, (frames, with_face, with_mesh)
    kept, y = _single_label(rows)
    chance = np.bincount(y).max() / len(y)
    x = np.stack([_landmarks(r) for r in kept])
    # Euclidean on the shapes themselves: standardising 1404 coordinates would inflate their noise.
    mesh_acc = _loo_1nn(x, y, standardise=False)
    # 1-NN alone is not enough: on a static photo the detector's small biases from colour and zoom
    # already separate the classes (0.90 with demo v1, whose faces had one shape).  The shape
    # itself must differ: class means far apart compared with the spread inside a class.
    means = np.stack([x[y == k].mean(0) for k in range(7)])
    within = np.linalg.norm(x - means[y], axis=1).mean()
    between = min(np.linalg.norm(means[a] - means[b]) for a in range(7) for b in range(a))
    print(f"faces found {with_face / frames:.3f}  chance {chance:.2f}  landmarks {mesh_acc:.2f}  "
          f"between/within {between / within:.1f}")
    assert mesh_acc >= 0.9
    assert between >= 3 * within
