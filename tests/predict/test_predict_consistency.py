"""`emoprep predict` reproduces training: the small demo's valid and test utterances, predicted from
their raw media through a recordings list by a run whose shards are gone, get the probabilities of
the run's own predictions.parquet (within 1e-5) and the same decisions; and raw media files, cut into
windows or into their .srt cues, come out as rows, with a failure row for a file nothing can decode.

Tiny models (seconds of training) on the session's small demo shards, every registered model: the
hand-crafted ones (text tokens, DisVoice windows, face mesh) and the end-to-end ones (log-mel chunks
and face crops).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

import emoprep
from emoprep.cli import main
from emoprep.format.names import PREDICTIONS, RUN_RECORD, UTTERANCES
from emoprep.format.predictions import read_predictions
from emoprep.format.run_record import read_run_record
from emoprep.prediction.features import recorded_extraction
from emoprep.prediction.segments import windows
from emoprep.extraction.media.encode import write_video
from emoprep.extraction.media.probe import media_end_s
from emoprep.errors import SetupError
from emoprep.train.config import parse_sets
from emoprep.train.run import train

TINY = {
    "lf-lstm": ["optim.epochs=2", "optim.batch_size=4", "settings.hidden=8"],
    "lf-trans": ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.ff=16",
                 "settings.layers=1"],
    "mult": ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1"],
    "emoembs": ["optim.epochs=1", "optim.batch_size=4", "settings.hidden=8", "settings.emb_dim=6"],
    "fe2e": ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1",
             "settings.ff=16", "settings.mlp_hidden=16", "settings.cnn_width=0.0625"],
    "mesm": ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1",
             "settings.ff=16", "settings.mlp_hidden=16", "settings.cnn_width=0.0625"],
}


@pytest.fixture(scope="module")
def runs(demo_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("predict-runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a module fixture: the per-test one_torch_thread has not started yet
    try:
        for model, sets in TINY.items():
            train(model, demo_shards, base / model, sets=parse_sets(sets), quiet=True)
    finally:
        torch.set_num_threads(threads)
    return {model: base / model for model in TINY}


def _without_shards(run: Path, tmp_path: Path) -> Path:
    """A copy of ``run`` whose run.json points at a shard folder that does not exist."""
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    record = json.loads((copy / RUN_RECORD).read_text())
    record["shards"]["folder"] = str(tmp_path / "gone")
    (copy / RUN_RECORD).write_text(json.dumps(record))
    return copy


@pytest.mark.parametrize("model", list(TINY))
def test_predicting_the_raw_media_reproduces_the_runs_predictions(model: str, runs: dict[str, Path], demo_shards: Path,
                                                                    tmp_path: Path) -> None:
    run = _without_shards(runs[model], tmp_path)
    expected = pq.read_table(run / PREDICTIONS).to_pandas().set_index("utterance_id")
    plan = [u for u in pq.read_table(demo_shards / UTTERANCES).to_pylist() if u["utterance_id"] in expected.index]
    rows = [{"utterance_id": u["utterance_id"], "video": u["video_path"], "audio": u["audio_path"], "start": u["start_s"],
             "end": u["end_s"], "text": u["text"]} for u in plan]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 500)
    rows.append({"utterance_id": "broken", "video": str(broken), "start": 0.0, "end": 2.0})
    listed = tmp_path / "test-utterances.jsonl"
    listed.write_text("".join(json.dumps(r) + "\n" for r in rows))

    table = emoprep.predict(run, recordings=listed, synchronous=True)

    got = table.to_pandas().set_index("id")
    labels = read_run_record(run).shards.label_names
    assert len(expected) >= 4 and set(expected.index) | {"broken"} == set(got.index)
    ok = got.drop(index="broken")
    assert ok["error"].isna().all(), ok["error"].dropna().tolist()
    for label in labels:
        diff = np.abs(ok.loc[expected.index, f"prob_{label}"].to_numpy() - expected[f"prob_{label}"].to_numpy())
        assert diff.max() <= 1e-5, (label, diff.max())
        assert (ok.loc[expected.index, f"pred_{label}"].to_numpy() == expected[f"pred_{label}"].to_numpy()).all()
    wanted = set(json.loads((run / RUN_RECORD).read_text())["inputs"])
    assert all(set(m.split(",")) <= wanted for m in ok["modalities"])
    assert "text" in ",".join(ok["modalities"]) or "text" not in wanted
    failed = got.loc["broken"]
    assert failed["error"] and "decode" in failed["error"] and np.isnan(failed[f"prob_{labels[0]}"])


def test_a_run_records_its_extraction_and_older_runs_read_their_shards(runs: dict[str, Path], demo_shards: Path,
                                                                         tmp_path: Path) -> None:
    record = read_run_record(runs["lf-lstm"])
    assert record.extraction == emoprep.read_manifest(demo_shards).config
    old = record.__class__.from_dict({k: v for k, v in record.to_dict().items() if k != "extraction"})
    assert old.extraction is None
    assert recorded_extraction(old, runs["lf-lstm"]) == record.extraction  # from the shards' manifest.json
    gone = old.__class__.from_dict({**old.to_dict(), "shards": {**old.shards.to_dict(), "folder": str(tmp_path / "x")}})
    with pytest.raises(SetupError, match="records no extraction configuration"):
        recorded_extraction(gone, runs["lf-lstm"])


def test_media_files_are_cut_into_windows_or_their_transcripts_cues(runs: dict[str, Path], small_demo: Path,
                                                                      tmp_path: Path) -> None:
    video = sorted((small_demo / "Raw" / "Videos" / "Full" / "Combined").glob("*.mp4"))[0]
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    shutil.copy(video, a)
    shutil.copy(video, b)
    (tmp_path / "b.srt").write_text("1\n00:00:00,500 --> 00:00:02,750\nI am <i>so</i> glad\n\n"
                                    "2\n00:00:03,000 --> 00:00:05,500\nthis is awful\n")
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"junk" * 1000)
    mute = write_video(tmp_path / "mute.mp4", (np.full((48, 64, 3), 90 + k, dtype=np.uint8) for k in range(30)), 10)
    out = tmp_path / "preds.parquet"
    result = CliRunner().invoke(main, ["predict", str(runs["lf-lstm"]), str(a), str(b), str(junk), str(mute),
                                       "--out", str(out), "--synchronous", "--quiet"])
    assert result.exit_code == 3, result.output  # written, with a failure row
    table, info = read_predictions(out)
    rows = table.to_pylist()
    by_media = {m: [r for r in rows if r["media"] == str(m)] for m in (a, b, junk)}
    spans = [t for r in by_media[a] for t in (r["start"], r["end"])]
    expected = [t for w in windows(media_end_s(a), 4.0, 2.0) for t in w]
    assert spans == pytest.approx(expected, abs=1e-6) and len(spans) >= 6 and spans[0] == 0.0
    assert all(r["text"] is None and "text" not in r["modalities"] and r["error"] is None for r in by_media[a])
    assert [(r["start"], r["end"], r["text"]) for r in by_media[b]] == [(0.5, 2.75, "I am so glad"), (3.0, 5.5, "this is awful")]
    assert all(r["modalities"].startswith("text,") and r["face"] for r in by_media[b])
    assert len(by_media[junk]) == 1 and "decoder" in by_media[junk][0]["error"]
    mute_rows = [r for r in rows if r["media"] == str(mute)]  # a window without audio: the model reads acoustic
    assert len(mute_rows) == 1 and "decode_audio" in mute_rows[0]["error"] and mute_rows[0]["prob_anger"] is None
    assert info.label_names == read_run_record(runs["lf-lstm"]).shards.label_names

    page = tmp_path / "timeline.html"
    result = CliRunner().invoke(main, ["report", str(out), "--out", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "a.mp4" in html and "this is awful" in html and "junk.mov" in html and "mute.mp4" in html
    assert html.count("data:image/png") == 2  # one timeline per media file with scored rows
