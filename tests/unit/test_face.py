"""Face detection, choice, crop and encoding, and the ``visual`` extractor end to end."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _visual_media import REPO, astronaut_face, make_video, shared_or_skip  # noqa: E402

from emoprep.extraction.config import ExtractConfig, VisualConfig
from emoprep.errors import SetupError
from emoprep.extraction.extractors import EXTRACTORS, MODALITY_EXTRACTORS, build_extractor
from emoprep.extraction.extractors.au import AU_NAMES
from emoprep.extraction.extractors.visual import NO_FACE, VisualExtractor
from emoprep.format.codecs import decode_crop, encode_crop
from emoprep.extraction.faces import (
    FaceBox,
    clip_box,
    crop_face,
    iou,
    pick_face,
)
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.media.video import VideoFrameSource
from emoprep.extraction.records import Utterance


def config(**visual: object) -> ExtractConfig:
    return ExtractConfig(dataset="demo", modalities=("visual",), visual=replace(VisualConfig(), **visual))


@pytest.fixture(scope="module")
def extractor() -> VisualExtractor:
    ex = build_extractor("visual", config())
    assert isinstance(ex, VisualExtractor)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("facevid")
    return {
        "centre": make_video(d / "centre.mp4", n_frames=50),
        "left": make_video(d / "left.mp4", n_frames=25, face_at="left"),
        "right": make_video(d / "right.mp4", n_frames=25, face_at="right"),
    }


def run(ex: VisualExtractor, path: Path, start: float, end: float, region: str | None = None,
        interval: float = 0.5, src: VideoFrameSource | None = None) -> dict:
    u = Utterance("u", "demo", Path(path).stem, start, end, video_path=str(path), video_region=region)
    return ex.extract(UtteranceMedia(u, MediaOptions(frame_interval_s=interval), src or VideoFrameSource()))


# --- pure functions -----------------------------------------------------------------------------
def test_pick_face_prefers_track_then_size() -> None:
    small = FaceBox(10, 10, 40, 40, 0.9)
    big = FaceBox(200, 50, 120, 120, 0.8)
    assert pick_face([small, big], None) is big
    assert pick_face([small, big], FaceBox(12, 8, 42, 40, 0.9)) is small  # same person as before
    assert pick_face([small, big], FaceBox(500, 300, 20, 20, 0.9)) is big  # track lost: biggest
    assert pick_face([], small) is None
    assert iou(small, small) == pytest.approx(1.0) and iou(small, big) == 0.0


def test_crop_is_square_centred_and_padded_black_at_edges() -> None:
    img = np.zeros((200, 300, 3), np.uint8)
    img[80:120, 130:170] = (255, 0, 0)  # a red "face" 40 px wide
    for size in (48, 112, 224):
        crop = crop_face(img, FaceBox(130, 80, 40, 40, 1.0), 0.2, size)
        assert crop.shape == (size, size, 3)
        c = size // 2
        assert tuple(crop[c, c]) == (255, 0, 0)
        # margin 0.2: the face fills 1/1.4 of the side, so the border rows are background
        assert crop[1, c].max() == 0 and crop[c, 1].max() == 0
    edge = crop_face(np.full((100, 100, 3), 200, np.uint8), FaceBox(0, 0, 40, 40, 1.0), 0.5, 80)
    assert edge[0, 0].max() == 0 and edge[-1, -1].min() == 200  # outside the frame is black
    assert clip_box(FaceBox(-5, 90, 20, 20, 0.7), 100, 100) == FaceBox(0, 90, 15, 10, 0.7)


def test_png_roundtrip_is_lossless_and_jpeg_is_close() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    png = encode_crop(rgb, "png")["bytes"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and np.array_equal(decode_crop(png), rgb)
    smooth = np.tile(np.linspace(0, 255, 48, dtype=np.uint8)[:, None, None], (1, 48, 3))
    jpg = encode_crop(smooth, "jpeg", 95)["bytes"]
    assert jpg[:2] == b"\xff\xd8" and np.abs(decode_crop(jpg).astype(int) - smooth).max() < 12
    with pytest.raises(ValueError):
        encode_crop(rgb, "gif")


def test_detector_finds_the_astronaut(extractor: VisualExtractor) -> None:
    faces = extractor.detector.detect(astronaut_face())
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.8
    assert 60 < f.x < 100 and 60 < f.y < 110 and 80 < f.w < 115  # known face box (78, 83, 95, 95)


# --- the extractor ------------------------------------------------------------------------------
def test_registered_and_columns_in_schema() -> None:
    assert EXTRACTORS["visual"].endswith("visual:VisualExtractor")
    assert MODALITY_EXTRACTORS["visual"] == ("visual",)
    schema = json.loads((REPO / "schemas" / "utterance.v1.json").read_text())
    cols = {c["name"]: c for c in schema["columns"]}
    assert set(VisualExtractor.columns) <= set(cols)
    assert tuple(cols["aus"]["feature_names"]) == AU_NAMES and len(AU_NAMES) == 35


def test_extract_faces_from_generated_video(extractor: VisualExtractor, videos: dict[str, Path]) -> None:
    out = run(extractor, videos["centre"], 0.0, 2.0)
    assert set(out) == set(VisualExtractor.columns)
    assert out["frame_times_s"] == pytest.approx([0.0, 0.48, 1.0, 1.48])  # 0.48/0.52 tie: earlier frame
    assert out["face_missing"] == [None] * 4 and out["aus"] is None and out["face_mesh"] is None
    assert all(0.8 < s <= 1.0 for s in out["face_scores"])
    for crop, box in zip(out["face_crops"], out["face_boxes"]):
        assert crop["path"] is None
        img = decode_crop(crop["bytes"])
        assert img.shape == (48, 48, 3)
        x, y, w, h = box
        # the astronaut's face sits near the frame centre, in source pixels
        assert 250 < x < 330 and 80 < y < 180 and 70 < w < 130


@pytest.mark.parametrize("size", [112, 224])
def test_bigger_crops_and_jpeg(size: int, videos: dict[str, Path]) -> None:
    ex = build_extractor("visual", config(face_size=size, image_format="jpeg", jpeg_quality=80))
    ex.check()
    out = run(ex, videos["centre"], 0.0, 0.5)
    data = out["face_crops"][0]["bytes"]
    assert data[:2] == b"\xff\xd8" and decode_crop(data).shape == (size, size, 3)
    assert ex.describe()["image_format"] == "jpeg"
    ex.close()


def test_region_selects_the_speakers_half(extractor: VisualExtractor, videos: dict[str, Path]) -> None:
    left = run(extractor, videos["left"], 0.0, 1.0, "left")
    empty = run(extractor, videos["left"], 0.0, 1.0, "right")
    right = run(extractor, videos["right"], 0.0, 1.0, "right")
    assert left["face_missing"] == [None, None] and right["face_missing"] == [None, None]
    assert all(b[0] + b[2] <= 320 for b in left["face_boxes"])
    assert all(b[0] >= 320 for b in right["face_boxes"])  # boxes are in full-frame pixels
    assert empty["face_missing"] == [NO_FACE, NO_FACE]
    assert empty["face_crops"] == empty["face_boxes"] == empty["face_scores"] == [None, None]
    assert empty["frame_times_s"] == pytest.approx([0.0, 0.48])


def test_face_mesh_column(videos: dict[str, Path]) -> None:
    ex = build_extractor("visual", config(face_mesh=True))
    out = run(ex, videos["centre"], 0.0, 0.5)
    mesh = np.asarray(out["face_mesh"][0], dtype=np.float32).reshape(468, 3)
    x, y, w, h = out["face_boxes"][0]
    inside = (mesh[:, 0] > x - 0.3 * w) & (mesh[:, 0] < x + 1.3 * w) & (mesh[:, 1] > y - 0.5 * h) & (mesh[:, 1] < y + 1.3 * h)
    assert inside.mean() > 0.95
    ex.close()


def test_check_rejects_bad_settings() -> None:
    for bad in (dict(face_size=4), dict(image_format="gif"), dict(face_margin=-1.0), dict(jpeg_quality=0)):
        with pytest.raises(SetupError):
            VisualExtractor(config(**bad)).check()
    with pytest.raises(SetupError, match="unknown AU backend"):
        VisualExtractor(config(au_backend="magic"))


def test_describe_records_backend_and_params(extractor: VisualExtractor) -> None:
    d = extractor.describe()
    assert d["backend"] == "mediapipe" and d["versions"]["mediapipe"] == "0.10.21"
    assert d["au_backend"] == "none" and d["aus"] is None
    assert d["face_size"] == 48 and d["face_margin"] == 0.2 and d["image_format"] == "png"
    json.dumps(d)  # goes into Parquet metadata: must serialise


# --- real clips ---------------------------------------------------------------------------------
def _rate(out: dict) -> float:
    return sum(m is None for m in out["face_missing"]) / len(out["face_missing"])


def test_real_single_face_clips_detect_95_percent(extractor: VisualExtractor) -> None:
    shared_or_skip("grid")
    clips = sorted((REPO.parent / "shared" / "data" / "grid").glob("*.mpg"))
    clips += [shared_or_skip("faces", "single_face.mp4"), shared_or_skip("faces", "WolfgangLanger_Pexels.mp4")]
    with VideoFrameSource() as src:
        for clip in clips:
            end = 19.0 if "Wolfgang" in clip.name else 2.4
            out = run(extractor, clip, 0.0, end, src=src)
            assert _rate(out) >= 0.95, clip.name
            assert len(out["frame_times_s"]) == int(np.ceil(end / 0.5))


def test_real_face_then_no_face_completes_with_reasons(extractor: VisualExtractor) -> None:
    clip = shared_or_skip("faces", "face_noface.mov")
    out = run(extractor, clip, 0.0, 6.4)
    missing = out["face_missing"]
    assert len(missing) == 13
    assert missing[:4] == [None] * 4  # the man is on screen at first
    assert missing[-6:] == [NO_FACE] * 6  # the cartoon title has no face
    for i, m in enumerate(missing):
        if m is not None:
            assert out["face_crops"][i] is None and out["face_boxes"][i] is None and out["face_scores"][i] is None
        else:
            assert out["face_crops"][i] is not None


def test_output_converts_to_schema_types_and_round_trips_parquet(
    extractor: VisualExtractor, videos: dict[str, Path], tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emoprep.format.schema import utterance_schema
    from emoprep.extraction.engine.columns import to_arrow

    ex = build_extractor("visual", config(face_mesh=True))
    rows = [run(ex, videos["left"], 0.0, 1.0, "left"), run(ex, videos["left"], 0.0, 1.0, "right")]
    rows[1]["aus"] = [None, None]  # as a backend leaves it for frames without a face
    schema = utterance_schema()
    table = pa.table({c: to_arrow([r[c] for r in rows], schema.field(c).type) for c in VisualExtractor.columns})
    pq.write_table(table, tmp_path / "v.parquet")
    back = pq.read_table(tmp_path / "v.parquet")
    assert back.column("face_missing").to_pylist() == [[None, None], [NO_FACE, NO_FACE]]
    assert back.column("face_boxes").to_pylist()[0][0] == pytest.approx(rows[0]["face_boxes"][0])
    assert back.column("face_crops").to_pylist()[0][1]["bytes"] == rows[0]["face_crops"][1]["bytes"]
    assert len(back.column("face_mesh").to_pylist()[0][0]) == 1404
    ex.close()


LAZY_MEDIAPIPE = """
import sys
sys.modules["tensorflow"] = None  # a later solution/task import must not pull TensorFlow in this test
from emoprep.extraction.faces import import_mediapipe
mp = import_mediapipe()
eager = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "mediapipe"))
assert not any(m.startswith("matplotlib") for m in eager), [m for m in eager if m.startswith("matplotlib")]
assert "mediapipe.python.solutions.hands" not in sys.modules and "mediapipe.tasks.python.vision" not in sys.modules
assert mp.__version__ and mp.solutions.face_detection.FaceDetection and mp.solutions.face_mesh.FaceMesh
assert mp.solutions.hands.Hands  # another solution, loaded on first use
assert mp.tasks.BaseOptions.__name__ == "BaseOptions"  # the one name mediapipe.tasks.python's __init__ defines
from mediapipe.tasks.python import vision
assert vision.FaceLandmarker
import mediapipe.python.solutions.drawing_utils as du
assert mp.solutions.drawing_utils is du and "matplotlib" in sys.modules  # loaded when asked for
assert not any(type(f).__name__ == "_LazyPackages" for f in sys.meta_path)  # the hook is gone
print("ok")
"""


def test_mediapipe_loads_only_the_solutions_used() -> None:
    """``import_mediapipe`` leaves out matplotlib (MediaPipe's drawing utilities), every other legacy
    solution and the Tasks API until they are used, and they still work when they are."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", LAZY_MEDIAPIPE], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
