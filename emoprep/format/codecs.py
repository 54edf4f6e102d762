"""How the columns that are not plain numbers are stored, both ways, in one place.

* ``face_crops``: each crop is HuggingFace's image struct ``{"bytes": PNG or JPEG, "path": None}``;
  :func:`encode_crop` writes it (extraction), :func:`decode_crop` reads it back as RGB pixels (the
  trainer, the report, tests).
* ``logmel``: each 400 ms chunk is a ``128 x 32`` (mels x frames) image stored flat, mel-major
  (``index = mel * 32 + frame``) as one ``fixed_size_list<float16>[4096]``.
* ``face_mesh``: MediaPipe's 468 points per frame, ``x, y, z`` each, stored flat (1404 values).

The sizes here must agree with the published schema's fixed-size lists; ``tests/unit/test_format.py``
checks that they do.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

LOGMEL_MELS = 128
LOGMEL_FRAMES = 32
"""One chunk: 32 frames at a 12.5 ms hop = 400 ms, the acoustic window."""
MESH_POINTS = 468
"""Points of MediaPipe's face mesh (without the iris refinement)."""
MESH_COORDINATES = 3
CROP_FORMATS = ("png", "jpeg", "jpg")


# --- face crops -------------------------------------------------------------------------------------


def encode_crop(rgb: np.ndarray, image_format: str = "png", jpeg_quality: int = 90) -> dict[str, Any]:
    """A stored face crop of ``(S, S, 3)`` uint8 RGB pixels: PNG (lossless, the default: crops are
    small) or JPEG bytes in HuggingFace's image struct."""
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    fmt = image_format.lower()
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr)
    elif fmt in ("jpeg", "jpg"):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    else:
        raise ValueError(f"unknown image format {image_format!r}; use png or jpeg")
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} crop as {fmt}")
    return {"bytes": buf.tobytes(), "path": None}


def decode_crop(crop: dict[str, Any] | bytes | None) -> np.ndarray | None:
    """``(S, S, 3)`` uint8 RGB pixels of a stored crop (the struct or its bytes); None for a frame
    without a face."""
    data = crop.get("bytes") if isinstance(crop, dict) else crop
    if not data:
        return None
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


# --- log-mel chunks ---------------------------------------------------------------------------------


def logmel_to_flat(chunks: np.ndarray) -> np.ndarray:
    """``(n, 128, 32)`` chunks as the stored ``(n, 4096)`` float16 rows (mel-major)."""
    chunks = np.asarray(chunks)
    return chunks.reshape(len(chunks), LOGMEL_MELS * LOGMEL_FRAMES).astype(np.float16)


def logmel_from_flat(values: Any, mels: int = LOGMEL_MELS, frames: int = LOGMEL_FRAMES) -> np.ndarray:
    """Stored log-mel values of one row (a flat array, an Arrow list or a list of chunks) as float32
    ``(n, mels, frames)`` images."""
    if hasattr(values, "values") and hasattr(values, "flatten"):  # an Arrow list scalar or array
        values = values.values.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, mels, frames)


# --- face mesh --------------------------------------------------------------------------------------


def mesh_to_flat(points: np.ndarray) -> np.ndarray:
    """``(468, 3)`` points of one frame as the stored 1404 float32 values."""
    return np.asarray(points, dtype=np.float32).reshape(MESH_POINTS * MESH_COORDINATES)


def mesh_from_flat(values: np.ndarray) -> np.ndarray:
    """Stored face-mesh rows ``(n, 1404)`` (or one row) as ``(n, 468, 3)`` points."""
    return np.asarray(values).reshape(-1, MESH_POINTS, MESH_COORDINATES)
