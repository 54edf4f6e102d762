"""media_end_s: where a file's content ends, read from its header (used to clamp segment ends)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _visual_media import make_video

from emoprep.extraction.media.probe import media_end_s
from emoprep.extraction.media.video import VideoFrameSource


def test_generated_video_ends_after_its_last_frame(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", n_frames=30, fps=25)
    end = media_end_s(path)
    assert end == pytest.approx(1.2, abs=1e-6)
    with VideoFrameSource() as src:  # the last frame starts one frame duration before that end
        assert src.sample(path, 1.0, end, 0.04)[-1].t_s == pytest.approx(end - 0.04)


def test_unreadable_files_have_no_end(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all" * 10)
    assert media_end_s(tmp_path / "empty.mp4") is None
    assert media_end_s(tmp_path / "junk.wav") is None
    assert media_end_s(tmp_path / "absent.mp4") is None


@pytest.mark.parametrize(
    ("parts", "seconds"),
    [
        (("grid", "bbaf2n.mpg"), 2.98),  # MPEG-PS: durations from timestamps, not the header
        (("faces", "single_face.mp4"), 2.4),
        (("faces", "face_noface.mov"), 6.4),
    ],
)
def test_real_clips(shared, parts: tuple[str, ...], seconds: float) -> None:
    assert media_end_s(shared(*parts)) == pytest.approx(seconds, abs=0.05)
