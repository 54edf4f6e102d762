"""The demo's labels must be learnable from its media: each emotion has its own voice (rate, pitch,
volume) and its own look (colour cast, zoom).  A leave-one-out nearest-neighbour classifier on
simple summaries of the extracted features must beat chance by far, from audio alone and from
faces alone."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from emoprep.config import build_config
from emoprep.datasets.demo import demo_root
from emoprep.pipeline import run_extract
from emoprep.shards.reader import read_shards


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("demo-learn") / "shards"
    cfg = build_config("demo", {"modalities": ["logmel", "visual"], "shard_size": 16})
    summary = run_extract(cfg, demo_root(), out, synchronous=True)
    assert summary.complete and summary.failures == 0
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


def _loo_1nn(x: np.ndarray, y: np.ndarray) -> float:
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((y[d.argmin(1)] == y).mean())


def _face_colour(r: dict) -> np.ndarray:
    crops = [np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB"), dtype=np.float32) for c in r["face_crops"] if c]
    return np.mean([c.reshape(-1, 3).mean(0) for c in crops], axis=0)


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
