"""Joining a running cluster: by scheduler file, and refused (before any shard task) when a worker's
emoprep version or extraction backends differ from this machine's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emoprep.errors import SetupError
from emoprep.extraction import run_extract
from emoprep.extraction.config import build_config
from emoprep.testing.remote_media import pretend_other_install, restore_install


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[object, list[str]]]:
    """A LocalCluster of 2 worker processes (a test that patches a worker restores it)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
            Client(lc) as client:
        client.wait_for_workers(2)
        yield client, sorted(client.scheduler_info()["workers"])


def extract_on(client, small_demo: Path, out: Path):
    config = build_config("demo", {"shard_size": 4, "modalities": ["text", "logmel"]})
    return run_extract(config, small_demo, out, scheduler=client.scheduler.address, limit=4)


@pytest.mark.parametrize(("change", "expected"), [
    ({"emoprep_version": "9.9.9"}, r"emoprep version: '[^']+' here, '9\.9\.9' on the worker"),
    ({"librosa": "0.0-other"}, r"backends\.logmel\.librosa: '[^']+' here, '0\.0-other' on the worker"),
])
def test_a_worker_with_another_install_is_refused_with_the_difference(
        cluster, small_demo: Path, tmp_path: Path, change: dict, expected: str) -> None:
    client, workers = cluster
    client.run(pretend_other_install, workers=[workers[1]], **change)
    try:
        with pytest.raises(SetupError, match=expected) as info:
            extract_on(client, small_demo, tmp_path / "out")
    finally:
        client.run(restore_install, workers=[workers[1]])
    message = str(info.value)
    assert f"worker {workers[1]}" in message and f"worker {workers[0]}" not in message
    assert not list((tmp_path / "out").glob("*-of-*.parquet")), "no shard task ran"


def test_matching_workers_run(cluster, small_demo: Path, tmp_path: Path) -> None:
    client, _ = cluster
    summary = extract_on(client, small_demo, tmp_path / "out")
    assert summary.complete and summary.utterances == 4 and "cluster at tcp://" in summary.executor


def test_missing_scheduler_file_is_a_setup_error(small_demo: Path, tmp_path: Path) -> None:
    config = build_config("demo", {"modalities": ["text"]})
    with pytest.raises(SetupError, match="scheduler file not found"):
        run_extract(config, small_demo, tmp_path / "out", scheduler_file=str(tmp_path / "nope.json"), limit=2)
