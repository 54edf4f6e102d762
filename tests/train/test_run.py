"""A training run end to end on a tiny synthetic shard folder: the run folder, recomputable metrics,
same seed same numbers, resume, evaluate, learning, and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner

import cli
from emoprep.errors import SetupError
from emoprep.testing.shards import LABELS, build_shard_folder
from emoprep.train import loop, metrics
from emoprep.train.batch import InputSpec
from emoprep.train.inputs import Featurizer
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


def _interrupt_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Ctrl-C at the start of the ``epoch``-th training epoch of the next run."""
    real, calls = loop.train_epoch, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr("emoprep.train.run.train_epoch", interrupted)


def test_resume_continues_to_the_same_result(shards: Path, finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = loop.train_epoch
    out = tmp_path / "run"
    _interrupt_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train("lf-lstm", shards, out, sets=TINY, quiet=True)
    assert not (out / "metrics.json").exists() and (out / "last.pt").exists()
    monkeypatch.setattr("emoprep.train.run.train_epoch", real)
    with pytest.raises(SetupError, match="--resume"):
        train("lf-lstm", shards, out, sets=TINY, quiet=True)
    train("lf-lstm", shards, out, resume=True, quiet=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"), pd.read_parquet(finished / "predictions.parquet"))
    assert len((out / "history.jsonl").read_text().splitlines()) == 3


def test_resume_of_a_run_whose_optimiser_groups_differ_says_why(finished: Path, tmp_path: Path) -> None:
    """An earlier emoprep put a text branch trained from scratch in a group of its own."""
    out = Path(shutil.copytree(finished, tmp_path / "run"))
    (out / "metrics.json").unlink()
    blob = torch.load(out / "last.pt", weights_only=True)
    group = blob["optimizer"]["param_groups"][0]
    half = len(group["params"]) // 2
    blob["optimizer"]["param_groups"] = [{**group, "params": group["params"][:half]},
                                         {**group, "params": group["params"][half:]}]
    torch.save(blob, out / "last.pt")
    with pytest.raises(SetupError, match="does not fit this emoprep's parameter groups"):
        train("lf-lstm", Path(json.loads((out / "run.json").read_text())["shards"]["folder"]), out, resume=True,
              quiet=True)


def _epochs(run: Path) -> list[dict]:
    """The history without the timings."""
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "cpu_seconds")} for line in (run / "history.jsonl").read_text().splitlines()]


def test_resume_with_loader_workers_is_exact(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Persistent prediction loaders (workers > 0) are made afresh on resume: making them must not
    draw from the global RNG, or every epoch after the first resumed one would differ."""
    sets = parse_sets(["optim.epochs=3", "optim.batch_size=16", "settings.hidden=8", "data.workers=2"])
    train("lf-lstm", shards, tmp_path / "whole", sets=sets, quiet=True)
    real = loop.train_epoch
    out = tmp_path / "resumed"
    _interrupt_epoch(monkeypatch, 2)  # after epoch 1: two epochs run after the resume
    with pytest.raises(KeyboardInterrupt):
        train("lf-lstm", shards, out, sets=sets, quiet=True)
    monkeypatch.setattr("emoprep.train.run.train_epoch", real)
    assert len(_epochs(out)) == 1
    train("lf-lstm", shards, out, resume=True, quiet=True)
    assert _epochs(out) == _epochs(tmp_path / "whole")
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (out, tmp_path / "whole"))
    assert a == b
    best, whole = (torch.load(run / "best.pt", weights_only=True) for run in (out, tmp_path / "whole"))
    assert best.keys() == whole.keys() and all(torch.equal(best[k], whole[k]) for k in best)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"), pd.read_parquet(tmp_path / "whole" / "predictions.parquet"))


def test_loaders_leave_the_global_rng_alone(shards: Path) -> None:
    """A DataLoader draws its workers' base seed when iterated; from the global RNG unless it has a generator."""
    from emoprep import read_manifest
    from emoprep.train.data import ShardStream
    from emoprep.train.inputs import Featurizer, choose_branches

    manifest = read_manifest(shards)
    featurizer, _ = Featurizer.fit(shards, choose_branches(manifest, ("acoustic",), {}), manifest.label_names, 50)
    stream = ShardStream(shards, "valid", featurizer.columns(), transform=featurizer)
    before = torch.get_rng_state()
    for workers, persistent in ((0, False), (2, True)):
        for _ in loop.make_loader(stream, 8, workers, persistent=persistent):
            pass
    assert torch.equal(torch.get_rng_state(), before)


def test_rng_states_survive_a_weights_only_checkpoint(tmp_path: Path) -> None:
    import random

    from emoprep.train.run import _rng_state, _set_rng_state

    torch.save({"rng": _rng_state(torch.device("cpu"))}, tmp_path / "rng.pt")
    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    _set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"], torch.device("cpu"))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == draws


def test_merged_predictions_refuse_a_duplicate_utterance() -> None:
    from emoprep.train.run import _merge

    def part(ids: list[str]) -> dict:
        return {"ids": ids, "splits": ["valid"] * len(ids), "probs": np.zeros((len(ids), 3)), "targets": np.zeros((len(ids), 3)),
                "loss_sum": 0.0}

    assert _merge([part(["a", "c"]), part(["b"])])["ids"] == ["a", "b", "c"]
    with pytest.raises(RuntimeError, match="'b'.*2 times"):
        _merge([part(["a", "b"]), part(["b", "c"])])


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
        (["optim.epochs=many"], "optim.epochs='many': use a whole number"),
        (["modalities=[text,smell]"], "modalities must be"),
        (["wat=1"], "unknown setting.*wat"),
        (["data.start_method=threads"], "data.start_method must be default or one of .*spawn"),
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


def test_text_lr_scale_leaves_a_text_branch_trained_from_scratch_at_lr(shards: Path) -> None:
    """text_lr_scale is the paper's ALBERT at lr/10: a text branch that starts random (here learned
    token embeddings and an LSTM) trains at the full lr (tests/train/test_albert.py: ALBERT's own
    weights at lr * text_lr_scale)."""
    cfg = resolve_config("lf-lstm", sets=parse_sets(["optim.lr=0.01", "optim.text_lr_scale=0.1"]))
    entry = get_model("lf-lstm")
    net = entry.build({"text": InputSpec("text", "tokens", "tokens", vocab_size=5),
                       "acoustic": InputSpec("acoustic", "dense", "acoustic", dim=4)}, 3, entry.settings(), ModelContext(LABELS))
    (only,) = _param_groups(net, cfg)
    assert only["name"] == "rest" and only["lr"] == pytest.approx(0.01)
    assert len(only["params"]) == len(list(net.parameters()))


def test_run_json_records_each_parameter_groups_learning_rate(finished: Path) -> None:
    run = json.loads((finished / "run.json").read_text())
    assert run["param_groups"] == [{"name": "rest", "lr": pytest.approx(5e-4), "parameters": run["parameters"]}]


def _no_work(*args, **kwargs):
    raise AssertionError("the featuriser's pass over the training split ran before the settings were checked")


@pytest.mark.parametrize(("model", "item", "message"), [
    ("mesm", "settings.p=1.5", r"settings\.p must be in \(0, 1\], got 1\.5"),
    ("fe2e", "settings.d_model=-4", r"settings\.d_model must be positive, got -4"),
    ("lf-lstm", "settings.layers=0", r"settings\.layers must be positive, got 0"),
    ("mesm", "settings.cnn_width=0", r"settings\.cnn_width must be positive"),
    ("lf-trans", "settings.dropout=1", r"settings\.dropout must be in \[0, 1\)"),
])
def test_bad_model_settings_fail_before_the_shards_are_read(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            model: str, item: str, message: str) -> None:
    monkeypatch.setattr(Featurizer, "fit", _no_work)
    with pytest.raises(SetupError, match=message):  # before the folder is even looked at
        train(model, tmp_path / "no-such-shards", tmp_path / "r", sets=parse_sets([item]), quiet=True)
    with pytest.raises(SetupError, match=message):
        train(model, shards, tmp_path / "r", sets=parse_sets([item]), quiet=True)
    assert not (tmp_path / "r").exists()


E2E_TINY = ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1",
            "settings.ff=16", "settings.mlp_hidden=16", "settings.cnn_width=0.0625"]


@pytest.fixture(scope="module")
def e2e_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shard_folder(tmp_path_factory.mktemp("e2e") / "s", {"train": 12, "valid": 6, "test": 6},
                              crops=True, logmel=True, face_mesh=False)


def shards_of(folder: Path, dataset: str, where: Path) -> Path:
    """A copy of the shard folder whose manifest names ``dataset``."""
    copy = Path(shutil.copytree(folder, where))
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "dataset": dataset}))
    return copy


@pytest.mark.parametrize(("dataset", "extra", "p", "reason"), [
    ("iemocap", [], 0.7, "the paper's value for IEMOCAP shards"),
    ("mosei", [], 0.5, "the paper's value for MOSEI shards"),
    ("iemocap", ["settings.p=0.9"], 0.9, "set by --set"),
])
def test_mesm_p_is_chosen_by_the_shards_dataset_and_recorded(e2e_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             dataset: str, extra: list[str], p: float, reason: str) -> None:
    monkeypatch.setattr("emoprep.train.run._fit_and_evaluate", lambda *args: {})  # the records are written before
    out = tmp_path / "run"
    train("mesm", shards_of(e2e_shards, dataset, tmp_path / "s"), out, sets=parse_sets([*E2E_TINY, *extra]), quiet=True)
    run = json.loads((out / "run.json").read_text())
    assert run["shards"]["dataset"] == dataset
    assert run["chosen"] == {"settings.p": {"value": p, "reason": reason}}
    assert yaml.safe_load((out / "config.yaml").read_text())["settings"]["p"] == p


def test_paper_preset_is_refused_before_any_work(e2e_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMOPREP_ALBERT", raising=False)
    monkeypatch.setattr(Featurizer, "fit", _no_work)
    mosei = shards_of(e2e_shards, "mosei", tmp_path / "mosei")
    with pytest.raises(SetupError, match=r"(?s)--preset paper fine-tunes ALBERT.*settings\.albert_path"):
        train("mesm", mosei, tmp_path / "r", preset="paper", quiet=True)
    other = shards_of(e2e_shards, "recordings", tmp_path / "other")
    with pytest.raises(SetupError, match="IEMOCAP and MOSEI shards.*'recordings'"):
        train("fe2e", other, tmp_path / "r", preset="paper", sets=parse_sets(["settings.albert_path=/a"]), quiet=True)
    with pytest.raises(SetupError, match="not found"):  # the preset needs the shards' dataset: their folder is read first
        train("mesm", tmp_path / "missing", tmp_path / "r", preset="paper", quiet=True)
    assert not (tmp_path / "r").exists()
