"""Segment times against the media's end, through the whole pipeline: an end past the media is
clamped (``end_s`` is where the features stop) and counted; a start past it is a recorded failure."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from emoprep.extraction import progress as extraction_progress
from emoprep.extraction.config import build_config
from emoprep.extraction import run_extract
from emoprep.extraction.media.probe import media_end_s
from emoprep.testing import write_tone_video


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, dict]:
    root = tmp_path_factory.mktemp("media-end")
    video = write_tone_video(root / "clips/rec.mp4", 2.0)
    end = media_end_s(video)
    assert end is not None and 1.99 < end < 2.1
    (root / "m.csv").write_text(
        "utterance_id,video,start,end,split\n"
        "inside,clips/rec.mp4,0.2,1.2,train\n"
        "past,clips/rec.mp4,1.0,3.5,train\n"  # ends 1.5 s after the recording
        "after,clips/rec.mp4,2.5,3.0,train\n"  # starts after it: nothing to extract
    )
    out = root / "shards"
    cfg = build_config("manifest", {"modalities": ["logmel", "visual"], "shard_size": 4})
    summary = run_extract(cfg, root / "m.csv", out, synchronous=True)
    assert summary.complete
    manifest = json.loads((out / "manifest.json").read_text())
    rows = pq.read_table([out / s["file"] for s in manifest["shards"]]).to_pylist()
    return out, summary, {r["utterance_id"]: r | {"media_end": end} for r in rows}


def test_end_is_clamped_and_features_cover_it(run) -> None:
    _, _, rows = run
    assert set(rows) == {"inside", "past"}
    past = rows["past"]
    assert past["start_s"] == 1.0 and past["end_s"] == pytest.approx(past["media_end"])
    # log-mel frames (12.5 ms hop) and sampled frames (every 0.5 s) span [start_s, end_s]
    assert sum(past["logmel_frames"]) == pytest.approx((past["end_s"] - 1.0) / 0.0125, abs=2)
    assert len(past["frame_times_s"]) == 2 and past["frame_times_s"][-1] <= past["end_s"]
    assert rows["inside"]["end_s"] == 1.2


def test_start_after_the_media_is_a_reader_failure(run) -> None:
    out, summary, _ = run
    failures = pq.read_table(out / "failures.parquet").to_pylist()
    assert [(f["utterance_id"], f["stage"], f["error_type"]) for f in failures] == [("after", "reader", "invalid")]
    assert summary.reader_issues == {"clamped_end": 1, "invalid": 1}
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["reader_issues"] == {"clamped_end": 1, "invalid": 1} and counts["reader.clamped_end"] == 1


def test_summary_says_what_was_clamped(run, monkeypatch: pytest.MonkeyPatch) -> None:
    _, summary, _ = run
    buf = io.StringIO()
    monkeypatch.setattr(extraction_progress, "console", lambda: Console(file=buf, width=200, color_system=None))
    extraction_progress.print_summary(summary)
    assert "clamped_end 1 (ends past the media set to its end)" in buf.getvalue()
