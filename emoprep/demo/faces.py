"""Animate the public-domain astronaut photo into a talking head whose look carries the emotion.

Each emotion has its own, learnable visual signature (colour cast, brightness, zoom, squash); the
head bobs with the loudness of the speech so that frames differ over time.  A tiny face, but a real
one: MediaPipe finds it, so the demo exercises face detection and cropping for real.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SIZE = 256

# Per emotion: RGB gain, brightness offset, zoom factor, horizontal squash.
LOOKS: dict[str, tuple[tuple[float, float, float], float, float, float]] = {
    "neutral": ((1.00, 1.00, 1.00), 0.0, 1.00, 1.00),
    "happiness": ((1.10, 1.05, 0.90), 30.0, 1.00, 1.00),
    "sadness": ((0.75, 0.80, 1.05), -45.0, 1.00, 1.00),
    "anger": ((1.35, 0.80, 0.75), 0.0, 1.05, 1.00),
    "fear": ((0.85, 1.05, 0.85), -10.0, 0.92, 1.00),
    "surprise": ((1.05, 1.05, 1.10), 15.0, 1.18, 1.00),
    "disgust": ((1.05, 1.15, 0.70), -15.0, 1.00, 0.88),
}


@lru_cache(maxsize=1)
def base_face() -> np.ndarray:
    """A 256x256 RGB crop of scikit-image's astronaut photo centred on the face."""
    from skimage import data

    img = data.astronaut()  # 512x512x3 uint8, public domain (NASA)
    return np.ascontiguousarray(img[10:266, 97:353])


def _zoom(img: np.ndarray, factor: float, squash: float, dy: int) -> np.ndarray:
    """Nearest-neighbour zoom about the centre, with a horizontal squash and a vertical shift."""
    h, w = img.shape[:2]
    ys = np.clip(((np.arange(h) - h / 2) / factor + h / 2 - dy).astype(int), 0, h - 1)
    xs = np.clip(((np.arange(w) - w / 2) / (factor * squash) + w / 2).astype(int), 0, w - 1)
    return img[ys][:, xs]


def render_frame(emotion: str, loudness: float, t: float) -> np.ndarray:
    """One RGB frame for ``emotion`` at time ``t`` with the speech ``loudness`` in [0, 1]."""
    gain, offset, zoom, squash = LOOKS[emotion]
    dy = int(round(6 * loudness + 2 * np.sin(2 * np.pi * 0.5 * t)))
    img = _zoom(base_face(), zoom, squash, dy).astype(np.float32)
    img = img * np.asarray(gain, dtype=np.float32) + offset
    return np.clip(img, 0, 255).astype(np.uint8)
