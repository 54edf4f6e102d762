"""Face mesh: MediaPipe's tracking (video) mode across consecutive frames, static mode for sparse ones.

Tracking must be an optimisation only: landmarks close to static mode's, and a row's mesh must not
depend on what the extractor saw before (restarted at every utterance and after every gap).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _visual_media import make_video

from emoprep.extraction.config import ExtractConfig, VisualConfig
from emoprep.extraction.extractors import build_extractor
from emoprep.extraction.extractors.visual import VisualExtractor, _follows
from emoprep.extraction.faces import FaceMesher
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.media.video import VideoFrameSource
from emoprep.extraction.records import Utterance

FPS = 25


def mesh_extractor() -> VisualExtractor:
    cfg = ExtractConfig(dataset="demo", modalities=("visual",), visual=replace(VisualConfig(), face_mesh=True))
    ex = build_extractor("visual", cfg)
    ex.check()
    return ex


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("mesh") / "talk.mp4", n_frames=60, fps=FPS)


@pytest.fixture(scope="module")
def ex() -> VisualExtractor:
    e = mesh_extractor()
    yield e
    e.close()


def frames_of(path: Path, start: float, end: float, interval: float) -> list:
    with VideoFrameSource() as src:
        return src.sample(path, start, end, interval)


def extract_frames(ex: VisualExtractor, frames: list) -> dict:
    """Run the extractor on given frames (a stand-in for UtteranceMedia)."""
    media = SimpleNamespace(frames=lambda: frames, utterance=Utterance("u", "demo", "v", 0.0, 1.0))
    return ex.extract(media)


def mesh_array(out: dict) -> np.ndarray:
    return np.array([np.reshape(m, (468, 3)) for m in out["face_mesh"]], dtype=np.float64)


def mean_point_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[..., :2] - b[..., :2], axis=-1).mean())


def test_follows_needs_the_next_frame_of_the_stream() -> None:
    f = SimpleNamespace(t_s=1.04, frame_duration_s=0.04)
    assert _follows(f, 1.0) and not _follows(f, None) and not _follows(f, 0.96 - 0.04)
    assert not _follows(SimpleNamespace(t_s=1.04, frame_duration_s=None), 1.0)
    assert not _follows(f, 1.5)  # time order only


def test_sparse_frames_use_static_mode(ex: VisualExtractor, video: Path) -> None:
    ex.run_stats()
    out = extract_frames(ex, frames_of(video, 0.0, 2.0, 0.5))
    assert out["face_missing"] == [None] * 4
    assert ex.run_stats()["face_mesh_tracked_frames"] == 0
    assert "tracking" in ex.describe()["face_mesh_mode"]


def test_consecutive_frames_are_tracked_and_close_to_static(ex: VisualExtractor, video: Path) -> None:
    frames = frames_of(video, 0.0, 1.6, 1 / FPS)
    assert len(frames) == 40
    ex.run_stats()
    tracked = extract_frames(ex, frames)
    assert ex.run_stats()["face_mesh_tracked_frames"] == 39  # all but the first of the run
    static = mesh_extractor()
    static.mesher.close()
    static.mesher = FaceMesher(tracking=False)
    ref = extract_frames(static, frames)
    static.close()
    d = mean_point_distance(mesh_array(tracked), mesh_array(ref))
    assert 0 < d < 3.0  # pixels of a ~95 px wide face: the same landmarks, not identical runs


def test_a_rows_mesh_does_not_depend_on_earlier_rows(ex: VisualExtractor, video: Path) -> None:
    first = frames_of(video, 0.0, 0.8, 1 / FPS)
    second = frames_of(video, 1.2, 2.0, 1 / FPS)
    after = extract_frames(ex, second)
    extract_frames(ex, first)
    again = extract_frames(ex, second)
    fresh = mesh_extractor()
    alone = extract_frames(fresh, second)
    fresh.close()
    assert after["face_mesh"] == again["face_mesh"] == alone["face_mesh"]


def test_tracking_restarts_after_a_gap(ex: VisualExtractor, video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = frames_of(video, 0.0, 0.4, 1 / FPS)  # 10 consecutive frames ...
    frames = frames[:4] + frames[6:]  # ... with two missing, as when no face was found in them
    calls: list[bool] = []
    resets: list[int] = []
    landmarks, reset = ex.mesher.landmarks, ex.mesher.reset
    monkeypatch.setattr(ex.mesher, "landmarks", lambda rgb, box, track=False: calls.append(track) or landmarks(rgb, box, track))
    monkeypatch.setattr(ex.mesher, "reset", lambda: resets.append(len(calls)) or reset())
    extract_frames(ex, frames)
    assert calls == [False, True, True, True, False, True, True, True]
    assert resets == [0, 4]  # at the start of the row and at the gap


def test_real_clip_at_its_own_frame_rate(shared) -> None:
    """A real talking head at 30 fps: every frame but the first is tracked, landmarks within a few
    pixels of static mode's."""
    clip = shared("faces", "single_face.mp4")
    u = Utterance("u", "demo", "v", 0.0, 1.0, video_path=str(clip))
    tracked_ex, static_ex = mesh_extractor(), mesh_extractor()
    static_ex.mesher.close()
    static_ex.mesher = FaceMesher(tracking=False)
    outs = []
    for e in (tracked_ex, static_ex):
        with VideoFrameSource() as src:
            outs.append(e.extract(UtteranceMedia(u, MediaOptions(frame_interval_s=1 / 30), src)))
    assert tracked_ex.run_stats()["face_mesh_tracked_frames"] == 29
    assert mean_point_distance(mesh_array(outs[0]), mesh_array(outs[1])) < 4.0
    tracked_ex.close()
    static_ex.close()
