"""Training, evaluating and reporting with the shards and the run folder on S3 (moto's server): the
same numbers and pages as with local folders, checkpoints put after every epoch, ``--resume`` from
the bucket, and no credential in anything written or printed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import cli
from emoprep.format.names import (
    BEST_WEIGHTS,
    EVALUATIONS,
    FEATURIZER,
    HISTORY,
    LAST_STATE,
    METRICS,
    PREDICTIONS,
    RUN_CONFIG,
    RUN_RECORD,
)
from emoprep.format.storage import Folder
from emoprep.train import loop

TINY = ["--set", "optim.epochs=2", "--set", "optim.batch_size=4", "--set", "settings.hidden=8", "--device", "cpu", "--quiet"]
RUN_FILES = {RUN_CONFIG, RUN_RECORD, FEATURIZER, HISTORY, BEST_WEIGHTS, LAST_STATE, METRICS, PREDICTIONS}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):  # noqa: ANN001 - the shared fixture
    yield


def _train(shards: str | Path, out: str | Path, flags: list[str], *extra: str) -> str:
    result = CliRunner().invoke(cli.main, ["train", "lf-lstm", "--shards", str(shards), "--out", str(out), *TINY, *flags, *extra])
    assert result.exit_code == 0, result.output
    return result.output


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """For module fixtures, which start before the per-test ``one_torch_thread``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def local_run(demo_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: local shards into a local run folder."""
    out = tmp_path_factory.mktemp("local-run") / "run"
    with _one_torch_thread():
        _train(demo_shards, out, [])
    return out


@pytest.fixture(scope="module")
def s3_run(s3_shards: str, object_store) -> str:  # noqa: ANN001
    """Shards from S3 into a run folder on S3 (named like the local one)."""
    out = object_store.bucket("runs") + "/run"
    with _one_torch_thread():
        _train(s3_shards, out, object_store.option_flags())
    return out


def _metrics(folder: Folder) -> dict:
    return json.loads(folder.read_text(METRICS))


def test_shards_on_s3_train_to_the_local_copys_numbers(s3_shards: str, local_run: Path, object_store,  # noqa: ANN001
                                                       tmp_path: Path) -> None:
    out = tmp_path / "from-s3"
    _train(s3_shards, out, object_store.option_flags())
    assert json.loads((out / METRICS).read_text()) == json.loads((local_run / METRICS).read_text())
    pd.testing.assert_frame_equal(pd.read_parquet(out / PREDICTIONS), pd.read_parquet(local_run / PREDICTIONS))
    record = json.loads((out / RUN_RECORD).read_text())
    reference = json.loads((local_run / RUN_RECORD).read_text())
    assert record["shards"]["folder"] == s3_shards
    assert record["shards"]["config_hash"] == reference["shards"]["config_hash"]
    assert record["extraction"] == reference["extraction"]


def test_a_run_folder_on_s3_holds_the_run(s3_run: str, local_run: Path, object_store) -> None:  # noqa: ANN001
    folder = Folder.of(s3_run, object_store.options)
    assert RUN_FILES <= set(folder.files())
    assert _metrics(folder) == json.loads((local_run / METRICS).read_text())
    assert len(folder.read_text(HISTORY).splitlines()) == 2
    for name in folder.files():  # run.json, the checkpoints, everything: no credential anywhere
        assert object_store.options["secret"].encode() not in folder.read_bytes(name), name


def test_a_run_on_s3_resumes_from_the_bucket(s3_shards: str, s3_run: str, object_store,  # noqa: ANN001
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = object_store.bucket("resume") + "/run"
    real, calls = loop.train_epoch, {"n": 0}

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr("emoprep.train.run.train_epoch", interrupted)
    result = CliRunner().invoke(cli.main, ["train", "lf-lstm", "--shards", s3_shards, "--out", out, *TINY,
                                           *object_store.option_flags()])
    assert result.exit_code == 130, result.output
    folder = Folder.of(out, object_store.options)
    assert LAST_STATE in folder.names() and METRICS not in folder.names()  # epoch 1 was put, the run is not finished
    monkeypatch.setattr("emoprep.train.run.train_epoch", real)
    refused = CliRunner().invoke(cli.main, ["train", "lf-lstm", "--shards", s3_shards, "--out", out, *TINY,
                                            *object_store.option_flags()])
    assert refused.exit_code == 2 and "--resume" in refused.output
    resumed = CliRunner().invoke(cli.main, ["train", "lf-lstm", "--shards", s3_shards, "--out", out, "--resume", "--device",
                                            "cpu", "--quiet", *object_store.option_flags()])
    assert resumed.exit_code == 0, resumed.output
    finished = Folder.of(s3_run, object_store.options)
    assert _metrics(folder) == _metrics(finished)
    assert folder.read_bytes(PREDICTIONS) == finished.read_bytes(PREDICTIONS)


def test_evaluate_a_run_on_s3_puts_its_evaluation_there(s3_run: str, object_store) -> None:  # noqa: ANN001
    result = CliRunner().invoke(cli.main, ["evaluate", s3_run, "--split", "test", "--device", "cpu",
                                           *object_store.option_flags()])
    assert result.exit_code == 0, result.output
    folder = Folder.of(s3_run, object_store.options)
    written = [n for n in folder.files() if n.startswith(EVALUATIONS + "/")]
    assert len(written) == 1
    evaluation = json.loads(folder.read_text(written[0]))
    assert evaluation["average"] == _metrics(folder)["test"]["average"]
    assert object_store.options["secret"] not in result.output + folder.read_text(written[0])


def _page(html: str) -> str:
    """A report page without what differs between two renderings of the same content."""
    return re.sub(r"Rendered in [\d.]+ s", "", html)


def test_report_of_a_shard_folder_on_s3_is_the_local_copys(s3_shards: str, demo_shards: Path, object_store,  # noqa: ANN001
                                                          tmp_path: Path) -> None:
    runner = CliRunner()
    remote = runner.invoke(cli.main, ["report", s3_shards, "--out", str(tmp_path / "s3.html"), *object_store.option_flags()])
    local = runner.invoke(cli.main, ["report", str(demo_shards), "--out", str(tmp_path / "local.html")])
    assert remote.exit_code == local.exit_code == 0, remote.output
    page = (tmp_path / "s3.html").read_text()
    assert _page(page) == _page((tmp_path / "local.html").read_text()) and "Rendered in" in page
    assert object_store.options["secret"] not in page + remote.output


def test_report_of_a_run_on_s3_is_the_local_runs(s3_run: str, local_run: Path, object_store,  # noqa: ANN001
                                                tmp_path: Path) -> None:
    runner = CliRunner()
    remote = runner.invoke(cli.main, ["report", s3_run, "--out", str(tmp_path / "s3.html"), *object_store.option_flags()])
    assert remote.exit_code == 0, remote.output
    local = runner.invoke(cli.main, ["report", str(local_run), "--out", str(tmp_path / "local.html")])
    assert local.exit_code == 0, local.output

    def content(html: str) -> str:  # the dates, the seconds trained and the folders' locations differ
        html = re.sub(r"\d{4}-\d\d-\d\dT[\d:+]+|[\d.,]+ s of train", "", _page(html))
        return html.replace(s3_run, "").replace(str(local_run), "")

    page = (tmp_path / "s3.html").read_text()
    assert "Wrong predictions" in page and content(page) == content((tmp_path / "local.html").read_text())
    assert object_store.options["secret"] not in page + remote.output


def test_predict_loads_a_run_from_s3(s3_run: str, local_run: Path, object_store) -> None:  # noqa: ANN001
    from emoprep.prediction.api import load_run_model
    from emoprep.train.trained import load_trained

    remote = load_run_model(s3_run, "cpu", object_store.options)
    local = load_trained(local_run)
    assert remote.where == s3_run and local.where == str(local_run.resolve())
    assert not remote.folder.exists()  # the local copy is gone once the weights are loaded
    assert remote.net.state_dict().keys() == local.net.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(remote.net.state_dict().values(), local.net.state_dict().values()))
    assert list(remote.thresholds) == list(local.thresholds)
