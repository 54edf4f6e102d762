"""A training run end to end on a tiny synthetic shard folder: the run folder, recomputable metrics,
same seed same numbers, resume, evaluate, learning, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import cli
from emoprep.errors import SetupError
from emoprep.testing.shards import LABELS, build_shard_folder
from emoprep.train import loop, metrics
from emoprep.train.batch import InputSpec
from emoprep.train.config import parse_sets, resolve_config
from emoprep.train.models import ModelContext, get_model
from emoprep.train.run import _param_groups, evaluate, train

TINY = parse_sets(["optim.epochs=3", "optim.batch_size=16", "settings.hidden=8"])


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shard_folder(tmp_path_factory.mktemp("shards") / "s", {"train": 64, "valid": 24, "test": 24})


@pytest.fixture(scope="module")
def finished(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "lstm"
    train("lf-lstm", shards, out, sets=TINY, quiet=True)
    return out


def test_run_folder_holds_the_record(finished: Path, shards: Path) -> None:
    names = {p.name for p in finished.iterdir()}
    assert {"config.yaml", "run.json", "featurizer.json", "history.jsonl", "best.pt", "last.pt", "metrics.json",
            "predictions.parquet"} <= names
    run = json.loads((finished / "run.json").read_text())
    assert run["status"] == "complete"
    assert run["shards"]["config_hash"] == json.loads((shards / "manifest.json").read_text())["config_hash"]
    assert run["inputs"]["visual"]["column"] == "face_mesh" and "aus not written" in run["inputs"]["visual"]["reason"]
    assert run["inputs"]["text"]["column"] == "tokens"
    history = [json.loads(line) for line in (finished / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    m = json.loads((finished / "metrics.json").read_text())
    assert 1 <= m["chosen_epoch"] <= 3
    assert m["test"]["rows"] == 23 and set(m["test"]["per_class"]) == set(LABELS)  # one unlabelled row per split
    state = torch.load(finished / "best.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_metrics_are_recomputable_from_the_predictions_file(finished: Path) -> None:
    m = json.loads((finished / "metrics.json").read_text())
    preds = pd.read_parquet(finished / "predictions.parquet")
    assert sorted(preds["split"].unique()) == ["test", "valid"]
    for split in ("valid", "test"):
        p = preds[preds["split"] == split]
        probs = p[[f"prob_{n}" for n in LABELS]].to_numpy()
        targets = p[[f"true_{n}" for n in LABELS]].to_numpy()
        again = metrics.compute_metrics(probs, targets, np.asarray(m["thresholds"]), LABELS, m["task"])
        assert again["average"] == pytest.approx(m[split]["average"])
        assert (p[[f"pred_{n}" for n in LABELS]].to_numpy() == metrics.predict(probs, np.asarray(m["thresholds"]))).all()
    valid = preds[preds["split"] == "valid"]
    chosen = metrics.choose_thresholds(valid[[f"prob_{n}" for n in LABELS]].to_numpy(), valid[[f"true_{n}" for n in LABELS]].to_numpy())
    assert list(chosen) == pytest.approx(m["thresholds"])  # thresholds come from validation


def test_same_seed_same_numbers(shards: Path, finished: Path, tmp_path: Path) -> None:
    train("lf-lstm", shards, tmp_path / "again", sets=TINY, quiet=True)
    a = pd.read_parquet(finished / "predictions.parquet")
    b = pd.read_parquet(tmp_path / "again" / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b)
    train("lf-lstm", shards, tmp_path / "other", sets=TINY, seed=1, quiet=True)
    c = pd.read_parquet(tmp_path / "other" / "predictions.parquet")
    assert not np.allclose(a["prob_anger"], c["prob_anger"])


def test_resume_continues_to_the_same_result(shards: Path, finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = loop.train_epoch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    out = tmp_path / "run"
    monkeypatch.setattr("emoprep.train.run.train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train("lf-lstm", shards, out, sets=TINY, quiet=True)
    assert not (out / "metrics.json").exists() and (out / "last.pt").exists()
    monkeypatch.setattr("emoprep.train.run.train_epoch", real)
    with pytest.raises(SetupError, match="--resume"):
        train("lf-lstm", shards, out, sets=TINY, quiet=True)
    train("lf-lstm", shards, out, resume=True, quiet=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"), pd.read_parquet(finished / "predictions.parquet"))
    assert len((out / "history.jsonl").read_text().splitlines()) == 3


def test_evaluate_reproduces_the_test_metrics(finished: Path) -> None:
    result = evaluate(finished, split="test", device="cpu", quiet=True)
    m = json.loads((finished / "metrics.json").read_text())
    assert result["average"] == pytest.approx(m["test"]["average"])
    assert list((finished / "evaluations").glob("test-*.json"))


def test_a_model_learns_and_noise_does_not(tmp_path: Path) -> None:
    sets = parse_sets(["optim.epochs=12", "optim.lr=3e-3", "optim.batch_size=16", "settings.d_model=16", "settings.ff=32"])
    learnable = build_shard_folder(tmp_path / "signal", {"train": 96, "valid": 32, "test": 32}, seed=1)
    noise = build_shard_folder(tmp_path / "noise", {"train": 96, "valid": 32, "test": 32}, seed=1, signal=0.0)
    good = train("lf-trans", learnable, tmp_path / "a", sets=sets, quiet=True)["test"]
    bad = train("lf-trans", noise, tmp_path / "b", sets=sets, quiet=True)["test"]
    assert good["average"]["f1"] > good["all_positive"]["f1"] + 0.25
    assert good["average"]["f1"] > bad["average"]["f1"] + 0.2


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["optim.lrr=1"], "unknown setting.*optim.lrr.*known: .*lr"),
        (["settings.nope=1"], "unknown setting.*settings.nope"),
        (["optim.epochs=many"], "optim.epochs must be a number"),
        (["modalities=[text,smell]"], "modalities must be"),
        (["wat=1"], "unknown setting.*wat"),
    ],
)
def test_bad_settings_fail_before_any_work(shards: Path, tmp_path: Path, sets: list[str], message: str) -> None:
    with pytest.raises(SetupError, match=message):
        train("lf-lstm", shards, tmp_path / "r", sets=parse_sets(sets), quiet=True)
    assert not (tmp_path / "r").exists()


def test_unusable_shards_give_clear_errors(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="unknown model 'lstm'.*lf-lstm"):
        train("lstm", shards, tmp_path / "r", quiet=True)
    unfinished = build_shard_folder(tmp_path / "unfinished", {"train": 8, "valid": 4})
    (unfinished / "manifest.json").unlink()
    with pytest.raises(SetupError, match="not finished|has not finished"):
        train("lf-lstm", unfinished, tmp_path / "r", quiet=True)
    unlabelled = build_shard_folder(tmp_path / "nolabels", {"train": 8, "valid": 4}, unlabelled=8)
    with pytest.raises(SetupError, match="no emotion labels|no labelled rows"):
        train("lf-lstm", unlabelled, tmp_path / "r", quiet=True)
    novisual = build_shard_folder(tmp_path / "novisual", {"train": 8, "valid": 4}, face_mesh=False)
    with pytest.raises(SetupError, match="no visual features"):
        train("lf-lstm", novisual, tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()


def test_cli_train_and_evaluate(shards: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", "mult", "--shards", str(shards), "--out", str(tmp_path / "m"), "--set", "optim.epochs=1",
            "--set", "settings.d_model=8", "--set", "settings.heads=2", "--device", "cpu"]
    result = runner.invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert "average" in result.output and "all-positive" in result.output
    again = runner.invoke(cli.main, args)
    assert again.exit_code == 2 and "--resume" in again.output
    result = runner.invoke(cli.main, ["evaluate", str(tmp_path / "m"), "--split", "valid"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.main, ["evaluate", str(tmp_path / "m"), "--split", "nope"])
    assert result.exit_code == 2 and "no 'nope' split" in result.output


def test_text_branch_learning_rate_scale(shards: Path) -> None:
    cfg = resolve_config("lf-lstm", sets=parse_sets(["optim.lr=0.01", "optim.text_lr_scale=0.1"]))
    entry = get_model("lf-lstm")
    net = entry.build({"text": InputSpec("text", "tokens", "tokens", vocab_size=5),
                       "acoustic": InputSpec("acoustic", "dense", "acoustic", dim=4)}, 3, entry.settings(), ModelContext(LABELS))
    rest, text = _param_groups(net, cfg)
    text_names = {n for n, p in net.named_parameters() if any(p is q for q in text["params"])}
    assert text["lr"] == pytest.approx(0.001) and rest["lr"] == pytest.approx(0.01)
    assert text_names and all(".text." in f".{n}" for n in text_names)
    assert len(text["params"]) + len(rest["params"]) == len(list(net.parameters()))
