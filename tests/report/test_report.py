"""``emoprep report``: what the HTML page of a shard folder and of a training run says, computed
independently from the files it describes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import cli
from emoprep.errors import SetupError
from emoprep.report import build_report
from emoprep.report.training_run import wrong_predictions
from emoprep.format.failures import FAILURES_SCHEMA
from emoprep.testing.shards import LABELS, OOV_WORD, build_shard_folder
from emoprep.train.config import parse_sets
from emoprep.train.run import train


def _sections(html: str) -> list[str]:
    return re.findall(r'<section id="[^"]+"><h2>([^<]+)</h2>', html)


def _images(html: str) -> list[bytes]:
    import base64

    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with every column the report draws (GloVe, AUs, crops, log-mel) and two failures."""
    root = build_shard_folder(tmp_path_factory.mktemp("rep") / "s", {"train": 12, "valid": 6, "test": 6},
                              crops=True, logmel=True, aus=True, glove=True, face_mesh=False)
    rows = [{"utterance_id": "x_1", "shard": None, "stage": "reader", "error_type": "DatasetError", "message": "no transcript"},
            {"utterance_id": "x_2", "shard": "train-00000", "stage": "visual", "error_type": "MediaError", "message": "corrupt video"},
            {"utterance_id": "x_3", "shard": "train-00000", "stage": "visual", "error_type": "MediaError", "message": "truncated"}]
    pq.write_table(pa.Table.from_pylist(rows, schema=FAILURES_SCHEMA), root / "failures.parquet")
    return root


def test_shard_folder_report_holds_every_section(synthetic: Path, tmp_path: Path) -> None:
    out = build_report(synthetic, tmp_path / "r.html")
    html = out.read_text()
    assert _sections(html) == ["Overview", "Labels", "Durations", "Faces", "Log-mel example", "Acoustic features",
                               "Action units", "Text", "Failures", "Backends and versions"]
    manifest = json.loads((synthetic / "manifest.json").read_text())
    for split, n in manifest["counts"]["rows_per_split"].items():
        assert f"<td>{split}</td><td>{n}</td>" in html
    # label counts per split, recomputed from the shards
    table = pq.ParquetDataset([synthetic / s["file"] for s in manifest["shards"]]).read(columns=["split", "emotions"])
    train = [e for e, s in zip(table.column("emotions").to_pylist(), table.column("split").to_pylist()) if s == "train" and e]
    counts = np.sum(train, axis=0)
    assert "<td>train</td><td>" + "</td><td>".join([str(len(train)), "1", *map(str, counts)]) + "</td>" in html
    # failures grouped by stage, the larger group first, with an example
    assert html.index("<td>visual</td><td>MediaError</td><td>2</td>") < html.index("<td>reader</td><td>DatasetError</td><td>1</td>")
    assert "corrupt video" in html
    tokens, oov = manifest["text"]["tokens"], manifest["text"]["oov_tokens"]
    assert 0 < oov < tokens and f"{oov:,} of {tokens:,} tokens out of vocabulary" in html
    assert f"<td>{OOV_WORD}</td><td>" in html  # the most frequent OOV tokens of the sample
    images = _images(html)
    assert len(images) == 6  # labels, durations, contact sheet, log-mel, acoustic, AUs
    assert all(img.startswith(b"\x89PNG") for img in images)


def test_report_of_a_run_shows_curves_metrics_and_wrong_predictions(synthetic: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train("lf-lstm", synthetic, run, sets=parse_sets(["optim.epochs=2", "optim.batch_size=8", "settings.hidden=8"]), quiet=True)
    html = build_report(run, tmp_path / "run.html").read_text()
    assert _sections(html) == ["Overview", "Learning curves", "Per-class metrics", "Wrong predictions"]
    metrics = json.loads((run / "metrics.json").read_text())
    for name, c in metrics["test"]["per_class"].items():
        assert f"<td>{name}</td><td>{c['threshold']:.3f}</td>" in html
        assert f"<td>{c['tp']}</td><td>{c['fp']}</td><td>{c['fn']}</td><td>{c['tn']}</td>" in html
    wrong = wrong_predictions(run / "predictions.parquet", list(metrics["label_names"]))
    texts = dict(zip(*pq.read_table(next(synthetic.glob("test-*.parquet")), columns=["utterance_id", "text"]).to_pydict().values()))
    for w in wrong:  # each card names the utterance and quotes its text from the shards
        assert w["utterance_id"] in html and f"“{texts[w['utterance_id']]}”" in html


def test_wrong_predictions_are_ranked_by_distance_from_the_truth(tmp_path: Path) -> None:
    from emoprep.train.run import write_predictions

    probs = np.array([[0.9, 0.1, 0.2], [0.6, 0.1, 0.1], [0.2, 0.8, 0.7], [0.1, 0.1, 0.9]], dtype=np.float32)
    targets = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
    write_predictions(tmp_path / "p.parquet", {"test": {"ids": ["a", "b", "c", "d"], "probs": probs, "targets": targets}},
                      np.full(3, 0.5), LABELS)
    got = wrong_predictions(tmp_path / "p.parquet", list(LABELS))
    # a and d are right on every class; c is off by 0.8 + 0.8 + 0.7, b by 0.6
    assert [w["utterance_id"] for w in got] == ["c", "b"]
    assert got[0]["pred"].tolist() == [0, 1, 1] and got[0]["true"].tolist() == [1, 0, 0]


def test_report_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="neither a finished shard folder"):
        build_report(tmp_path, tmp_path / "r.html")
    result = CliRunner().invoke(cli.main, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "neither" in result.output
    assert not (tmp_path / "r.html").exists()


def test_report_command_writes_the_page(synthetic: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, ["report", str(synthetic), "--out", str(tmp_path / "r.html"), "--sample", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    html = (tmp_path / "r.html").read_text()
    # --sample 2: one row group from each of 3 shards at most (at least one per split)
    assert re.search(r"one row group from each of 3 of the \d+ shards", html)
