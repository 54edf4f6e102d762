"""``visual.face_framing``: emoprep's square crop with context vs the MESM authors' MTCNN framing.

The paper's crops come from facenet-pytorch's ``MTCNN(image_size=48, margin=2)``, whose margin is
counted in pixels of the *output*: the box grows by ``2 * w / (48 - 2)`` in width (half per side),
likewise in height, is clipped to the frame and stretched to 48 x 48.  These tests pin that
geometry on synthetic images whose box, margin ring and background have different colours.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _visual_media import make_video

from emoprep.extraction.config import ExtractConfig, VisualConfig, build_config
from emoprep.errors import SetupError
from emoprep.extraction.extractors import build_extractor
from emoprep.extraction.extractors.visual import VisualExtractor
from emoprep.format.codecs import decode_crop
from emoprep.extraction.faces import (
    FaceBox,
    crop_face,
    crop_face_paper,
    frame_face,
    paper_crop_region,
)
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.media.video import VideoFrameSource
from emoprep.extraction.records import Utterance

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _facenet_region(box: FaceBox, size: int, margin: int, width: int, height: int) -> tuple[int, ...]:
    """facenet-pytorch's ``extract_face`` box arithmetic, written out from its source."""
    b = [box.x, box.y, box.x + box.w, box.y + box.h]
    m = [margin * (b[2] - b[0]) / (size - margin), margin * (b[3] - b[1]) / (size - margin)]
    return (
        int(max(b[0] - m[0] / 2, 0)),
        int(max(b[1] - m[1] / 2, 0)),
        int(min(b[2] + m[0] / 2, width)),
        int(min(b[3] + m[1] / 2, height)),
    )


def test_paper_region_is_the_box_plus_one_output_pixel_per_side() -> None:
    # w = 92, h = 138 at 48 px: the margin is 2 * 92 / 46 = 4 px wide (2 per side) and 6 px tall
    box = FaceBox(100, 50, 92, 138, 0.9)
    assert paper_crop_region(box, 48, 640, 360) == (98, 47, 194, 191)
    img = np.zeros((360, 640, 3), np.uint8)
    img[:] = BLUE  # background: must not appear in the paper's crop
    img[47:191, 98:194] = GREEN  # the margin ring
    img[50:188, 100:192] = RED  # the box
    crop = crop_face_paper(img, box, 48)
    assert crop.shape == (48, 48, 3)
    # 96 x 144 frame pixels -> 48 x 48: exactly one output pixel of margin on each side
    ring = np.concatenate([crop[0, :], crop[-1, :], crop[:, 0], crop[:, -1]])
    assert (ring == GREEN).all()
    assert (crop[1:-1, 1:-1] == RED).all()
    assert not (crop == BLUE).all(axis=-1).any()
    # the square framing keeps the aspect ratio and shows background around the face instead
    square = crop_face(img, box, 0.2, 48)
    assert (square[24, 0] == BLUE).all() and (square[24, 24] == RED).all()


@pytest.mark.parametrize("size", [48, 112, 224])
def test_paper_region_matches_facenet_arithmetic_including_frame_edges(size: int) -> None:
    rng = np.random.default_rng(size)
    width, height = 640, 360
    for _ in range(200):
        w, h = rng.uniform(10, 200), rng.uniform(10, 250)
        box = FaceBox(rng.uniform(-40, width - 10), rng.uniform(-40, height - 10), w, h, 0.9)
        region = paper_crop_region(box, size, width, height)
        if region[2] > region[0] + 1 and region[3] > region[1] + 1:
            assert region == _facenet_region(box, size, 2, width, height)
        x0, y0, x1, y1 = region
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height  # never outside the frame


def test_paper_crop_at_the_frame_edge_is_clipped_not_padded() -> None:
    img = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_face_paper(img, FaceBox(-10, -10, 40, 40, 1.0), 48)
    assert crop.shape == (48, 48, 3) and (crop == 200).all()  # square framing would add black
    assert (crop_face(img, FaceBox(-10, -10, 40, 40, 1.0), 0.2, 48)[0, 0] == 0).all()


def test_frame_face_dispatches_and_rejects_unknown_framings() -> None:
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    box = FaceBox(40, 30, 50, 60, 0.9)
    assert np.array_equal(frame_face(img, box, "paper", 0.2, 48), crop_face_paper(img, box, 48))
    assert np.array_equal(frame_face(img, box, "square", 0.2, 48), crop_face(img, box, 0.2, 48))
    with pytest.raises(ValueError, match="framing"):
        frame_face(img, box, "mtcnn", 0.2, 48)


def test_framing_changes_the_config_hash() -> None:
    default = build_config("mosei")
    paper = build_config("mosei", {"visual": {"face_framing": "paper"}})
    assert default.visual.face_framing == "square" and paper.visual.face_framing == "paper"
    assert default.config_hash != paper.config_hash


def _config(**visual: object) -> ExtractConfig:
    return ExtractConfig(dataset="demo", modalities=("visual",), visual=replace(VisualConfig(), **visual))


def test_extractor_checks_records_and_applies_the_framing(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="face_framing"):
        VisualExtractor(_config(face_framing="mtcnn")).check()
    video = make_video(tmp_path / "centre.mp4", n_frames=13)
    u = Utterance("u", "demo", "centre", 0.0, 0.5, video_path=str(video))
    outs, described = {}, {}
    for framing in ("square", "paper"):
        ex = build_extractor("visual", _config(face_framing=framing))
        ex.check()
        described[framing] = ex.describe()
        with VideoFrameSource() as src:
            outs[framing] = ex.extract(UtteranceMedia(u, MediaOptions(frame_interval_s=0.5), src))
        ex.close()
    assert described["paper"]["face_framing"] == "paper" and described["paper"]["face_margin_px"] == 2
    assert described["paper"]["face_margin"] is None and "facenet" in described["paper"]["crop"]
    assert described["square"]["face_framing"] == "square" and described["square"]["face_margin"] == 0.2
    # same detection, different framing: the boxes agree, the crops do not
    assert outs["paper"]["face_boxes"] == outs["square"]["face_boxes"]
    paper, square = (decode_crop(outs[f]["face_crops"][0]["bytes"]) for f in ("paper", "square"))
    assert paper.shape == square.shape == (48, 48, 3)
    assert np.abs(paper.astype(int) - square.astype(int)).mean() > 10
