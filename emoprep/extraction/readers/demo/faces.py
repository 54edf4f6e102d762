"""Animate the public-domain astronaut photo into a talking head whose look carries the emotion.

Each emotion has its own, learnable visual signature, in two kinds so that every visual feature
can learn it: colour cast, brightness and zoom for pixel features (face crops), and a geometry of
the face (an aspect ratio and a head tilt) for landmark features, which usually normalise away
position, scale, colour and brightness but keep shape.  The head bobs with the loudness of the
speech so that frames differ over time.  A tiny face, but a real one: MediaPipe finds it (and its
mesh), so the demo exercises face detection, cropping and landmarks for real.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SIZE = 256
FACE_CENTRE = (225.0, 138.0)
"""(x, y) of the face in the 512x512 astronaut photo: the centre of every rendered frame."""


@dataclass(frozen=True)
class Look:
    """How one emotion looks on screen.

    ``stretch_x`` / ``stretch_y`` / ``tilt_deg`` are the geometric signature: landmarks normalised
    for position and scale still see the face's aspect ratio and its roll, so emotions differ by
    one step (about 16 % aspect or 10 degrees) at least.
    """

    gain: tuple[float, float, float]
    offset: float
    zoom: float
    stretch_x: float = 1.0
    stretch_y: float = 1.0
    tilt_deg: float = 0.0


LOOKS: dict[str, Look] = {
    "neutral": Look((1.00, 1.00, 1.00), 0.0, 1.00),
    "happiness": Look((1.10, 1.05, 0.90), 30.0, 1.00, stretch_x=1.17),  # broad
    "surprise": Look((1.05, 1.05, 1.10), 15.0, 1.18, stretch_y=1.17),  # long face, dropped jaw
    "sadness": Look((0.75, 0.80, 1.05), -45.0, 1.00, tilt_deg=-10.0),  # head hangs to one side
    "fear": Look((0.85, 1.05, 0.85), -10.0, 0.92, tilt_deg=10.0),  # flinches to the other
    "anger": Look((1.35, 0.80, 0.75), 0.0, 1.05, stretch_x=1.17, tilt_deg=-10.0),
    "disgust": Look((1.05, 1.15, 0.70), -15.0, 1.00, stretch_x=0.86, tilt_deg=10.0),  # squashed, turned
}


@lru_cache(maxsize=1)
def base_photo() -> np.ndarray:
    """scikit-image's astronaut photo (512x512x3 uint8, public domain, NASA).

    The whole photo, not a crop around the face: a tilted or shrunk face then shows real
    surroundings at the frame's edges instead of smeared border pixels.
    """
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def _warp(look: Look, dy: float) -> np.ndarray:
    """The ``SIZE`` x ``SIZE`` frame of ``look``'s geometry, the face shifted down by ``dy`` px."""
    import cv2

    a = np.deg2rad(look.tilt_deg)
    rotate = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    linear = rotate @ np.diag([look.zoom * look.stretch_x, look.zoom * look.stretch_y])
    shift = np.array([SIZE / 2, SIZE / 2 + dy]) - linear @ np.asarray(FACE_CENTRE)
    matrix = np.hstack([linear, shift[:, None]])
    return cv2.warpAffine(
        base_photo(), matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def render_frame(emotion: str, loudness: float, t: float) -> np.ndarray:
    """One RGB frame for ``emotion`` at time ``t`` with the speech ``loudness`` in [0, 1]."""
    look = LOOKS[emotion]
    dy = 6 * loudness + 2 * np.sin(2 * np.pi * 0.5 * t)
    img = _warp(look, dy).astype(np.float32)
    img = img * np.asarray(look.gain, dtype=np.float32) + look.offset
    return np.clip(img, 0, 255).astype(np.uint8)
