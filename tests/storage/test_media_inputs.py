"""Extraction inputs on object storage (moto's real S3 server): a recordings list and its media read
from a bucket by a Dask cluster of 2 worker processes joined through a scheduler file, each worker
fetching each recording once into its own bounded cache; shards equal to a run on the local copies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emoprep.extraction import run_extract
from emoprep.extraction.config import build_config
from emoprep.extraction.media.fetch import cache_stats
from emoprep.extraction.readers import read_dataset
from emoprep.testing.remote_media import PublishedRecordings, publish_recordings

MODALITIES = ["text", "logmel", "visual"]  # audio from the WAVs, frames from the MP4s


def recordings_config(**extra):
    return build_config("recordings", {"shard_size": 4, "modalities": MODALITIES,
                                       "dataset_options": {"label_names": "anger,disgust,fear,happiness,sadness,surprise"},
                                       **extra})


@pytest.fixture(scope="module")
def published(small_demo: Path, object_store, tmp_path_factory: pytest.TempPathFactory) -> PublishedRecordings:
    demo = read_dataset("demo", small_demo, build_config("demo", {}))
    return publish_recordings(demo.utterances, demo.label_names, tmp_path_factory.mktemp("lists"),
                              object_store.bucket() + "/raw", object_store.options)


@pytest.fixture(scope="module")
def local_run(published: PublishedRecordings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "shards"
    summary = run_extract(recordings_config(), published.local_list, out, synchronous=True)
    assert summary.complete
    return out


@dataclass
class ClusterRun:
    out: Path
    stats: dict[str, dict]
    executor: str
    utterances: int


@pytest.fixture(scope="module")
def cluster_run(published: PublishedRecordings, object_store, tmp_path_factory: pytest.TempPathFactory) -> ClusterRun:
    """The list on S3, extracted by a LocalCluster of 2 processes that the run joins by scheduler file."""
    from distributed import Client, LocalCluster

    tmp = tmp_path_factory.mktemp("cluster")
    scheduler_file = tmp / "scheduler.json"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"scheduler_file": str(scheduler_file)}) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        summary = run_extract(recordings_config(), published.remote_list, tmp / "shards",
                              storage_options=object_store.options, scheduler_file=str(scheduler_file))
        stats = {w: vars(s) for w, s in client.run(cache_stats).items() if s is not None}
    assert summary.complete, summary.shard_errors
    return ClusterRun(tmp / "shards", stats, summary.executor, summary.utterances)


def _tables(out: Path) -> dict[str, object]:
    return {p.name: pq.read_table(p) for p in sorted(out.glob("*.parquet"))}


def test_shards_from_bucket_equal_local_run(local_run: Path, cluster_run: ClusterRun) -> None:
    local, remote = _tables(local_run), _tables(cluster_run.out)
    assert set(local) == set(remote) and any(n.startswith("train") for n in local)
    for name, table in local.items():
        if name == "utterances.parquet":  # the plan of record names the media where they were read
            table, other = table.drop(["video_path", "audio_path"]), remote[name].drop(["video_path", "audio_path"])
            assert remote[name].column("video_path")[0].as_py().startswith("s3://")
        else:
            other = remote[name]
        assert other.equals(table), name
    manifest = json.loads((cluster_run.out / "manifest.json").read_text())
    assert manifest["counts"]["utterances"] == json.loads((local_run / "manifest.json").read_text())["counts"]["utterances"]
    assert "scheduler.json" in cluster_run.executor and "2 worker(s)" in cluster_run.executor


def test_each_worker_fetches_each_recording_once(published: PublishedRecordings, cluster_run: ClusterRun) -> None:
    sizes = {url: Path(local).stat().st_size for local, url in published.media.items()}
    for worker, stats in cluster_run.stats.items():
        assert stats["fetched"] and set(stats["fetched"].values()) == {1}, (worker, stats["fetched"])
        assert stats["downloaded_bytes"] == sum(sizes[u] for u in stats["fetched"])
        assert stats["evictions"] == 0
    # every utterance decodes its WAV and its MP4 once: each decode was a download or a cache hit
    decodes = sum(s["downloads"] + s["hits"] for s in cluster_run.stats.values())
    assert decodes == 2 * cluster_run.utterances and sum(s["hits"] for s in cluster_run.stats.values()) > 0
    fetched = set().union(*(s["fetched"] for s in cluster_run.stats.values()))
    assert fetched == set(published.media.values()), "every recording was read, each from the bucket"


def test_worker_caches_are_removed_with_the_workers(cluster_run: ClusterRun) -> None:
    for stats in cluster_run.stats.values():
        assert not Path(stats["directory"]).exists()


def test_credentials_reach_no_output(object_store, cluster_run: ClusterRun) -> None:
    secret = object_store.options["secret"].encode()
    for p in cluster_run.out.rglob("*"):
        if p.is_file():
            assert secret not in p.read_bytes(), p.name


def test_cli_extract_from_a_list_url(published: PublishedRecordings, object_store, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from emoprep.cli import main

    out = tmp_path / "shards"
    result = CliRunner().invoke(main, [
        "extract", "--dataset", "recordings", "--root", published.remote_list, "--out", str(out),
        *object_store.option_flags(), "--media-cache", "50MB", "--modalities", "text,logmel", "--limit", "3",
        "--option", "label_names=anger,disgust,fear,happiness,sadness,surprise", "--synchronous", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = sum(pq.read_table(p).num_rows for p in out.glob("*-of-*.parquet"))
    assert rows == 3 and pq.read_table(out / "failures.parquet").num_rows == 0
    assert object_store.options["secret"] not in result.output


def test_a_list_of_media_urls_is_looked_up_and_probed_ahead(published: PublishedRecordings, object_store,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Every recording of a list with URL media is checked and probed before the first row is cleaned
    (several requests in flight), each once (the rows equal the local list's: the extraction tests)."""
    from emoprep.extraction.readers.segments import SegmentCleaner

    ahead: list[str] = []
    real = SegmentCleaner.probe_ahead

    def recording(self: SegmentCleaner, files) -> None:  # noqa: ANN001
        files = list(files)
        ahead.extend(files)
        real(self, files)

    monkeypatch.setattr(SegmentCleaner, "probe_ahead", recording)
    result = read_dataset("recordings", published.remote_list, recordings_config(), object_store.options)
    used = {p for u in result.utterances for p in (u.video_path, u.audio_path) if p}
    assert used and set(ahead) == used and len(ahead) == len(used)
    assert sorted(published.media.values()) == sorted(used)
