"""Generated test videos for the visual modality (PyAV-encoded, a real face pasted in).

Every frame carries its own index as 8 big black/white blocks along the top edge, so tests can
check *which* frame a sampler returned, not just its timestamp.  The face is the public-domain
astronaut photo that scikit-image ships.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
BLOCK = 16
BITS = 10


def astronaut_face() -> np.ndarray:
    """The astronaut's head and shoulders, 300 x 280 RGB (face box about (78, 83, 95, 95) inside)."""
    from skimage import data

    return data.astronaut()[0:300, 100:380].copy()


def stamp_index(img: np.ndarray, index: int) -> None:
    for b in range(BITS):
        img[0:BLOCK, b * BLOCK : (b + 1) * BLOCK] = 255 if (index >> b) & 1 else 0


def read_index(rgb: np.ndarray) -> int:
    """Frame index stamped by :func:`stamp_index` (relative to the full frame's left edge)."""
    value = 0
    for b in range(BITS):
        if rgb[2 : BLOCK - 2, b * BLOCK + 2 : (b + 1) * BLOCK - 2].mean() > 127:
            value |= 1 << b
    return value


def make_video(
    path: Path,
    n_frames: int = 100,
    fps: int = 25,
    size: tuple[int, int] = (640, 360),
    face_at: str | None = "centre",
    gop: int = 25,
    codec: str = "libx264",
    bframes: int = 0,
) -> Path:
    """An H.264 mp4 of ``n_frames`` frames; ``face_at``: centre, left, right (half) or None;
    ``bframes``: consecutive B-frames allowed (x264's default pyramid makes some of them references)."""
    import av

    w, h = size
    face = astronaut_face()
    fh, fw = face.shape[:2]
    scale = min(1.0, (h - BLOCK - 4) / fh)
    if scale < 1.0:
        import cv2

        face = cv2.resize(face, (int(fw * scale), int(fh * scale)), interpolation=cv2.INTER_AREA)
        fh, fw = face.shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.gop_size = gop
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"crf": "18", "bf": str(bframes)} if codec == "libx264" else {}
        for i in range(n_frames):
            img = np.full((h, w, 3), 90, np.uint8)
            img[:, :, 2] = 140
            if face_at is not None:
                dx = int(6 * np.sin(i / 7.0))  # a little motion, like a speaker
                cx = {"centre": w // 2, "left": w // 4, "right": 3 * w // 4}[face_at] + dx
                x0, y0 = max(0, cx - fw // 2), h - fh
                img[y0 : y0 + fh, x0 : x0 + fw] = face[:, : min(fw, w - x0)]
            stamp_index(img, i)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def shared_or_skip(*parts: str) -> Path:
    import pytest

    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared test data not present: {p.relative_to(REPO.parent)} (see shared/data/SOURCES.md)")
    return p
