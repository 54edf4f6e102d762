"""`emoprep extract --out s3://...` against moto's real S3 server, on a LocalCluster of 2 worker
processes: the shards equal the local run's, and a worker killed before its upload leaves nothing
partial under the prefix, after which a second run writes only the missing shard; the replace check
and the clean-up of stale shards work on the prefix; memory:// works in-process."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emoprep.errors import SetupError
from emoprep.extraction import run_extract
from emoprep.extraction.config import build_config
from emoprep.extraction.engine.lease import LEASE_NAME
from emoprep.extraction.engine.writer import EXIT_BEFORE_UPLOAD_ENV, footer_in
from emoprep.format.names import FAILURES, MANIFEST, UTTERANCES, is_shard_name
from emoprep.format.storage import Folder

TEXT_ONLY = {"modalities": ["text"], "shard_size": 3}
"""The default suite's version: 3-row shards, so several shards from the 12 clips."""
EVERY_MODALITY = {"shard_size": 3}
"""The demo's spec (text, acoustic, logmel, visual): the whole of what a worker writes."""


def _tables(folder: Folder) -> dict[str, pa.Table]:
    """Every shard the manifest lists, read back with pyarrow (through fsspec on object storage)."""
    manifest = json.loads(folder.read_text(MANIFEST))
    fs, base = folder.arrow()
    return {s["file"]: pq.read_table(f"{base}/{s['file']}", filesystem=fs) for s in manifest["shards"]}


def _assert_same_shards(a: Folder, b: Folder) -> None:
    ta, tb = _tables(a), _tables(b)
    assert ta.keys() == tb.keys() and len(ta) > 1
    for name in ta:
        assert ta[name].equals(tb[name]), name


@pytest.mark.parametrize("overrides", [TEXT_ONLY, pytest.param(EVERY_MODALITY, marks=pytest.mark.slow)],
                         ids=["text", "every-modality"])
def test_demo_to_s3_on_two_workers_equals_the_local_run(small_demo: Path, tmp_path: Path, object_store,  # noqa: ANN001
                                                       overrides: dict) -> None:
    cfg = build_config("demo", overrides)
    local = Folder.of(tmp_path / "local")
    run_extract(cfg, small_demo, local.location, synchronous=True)
    remote = Folder.of(object_store.bucket() + "/demo", object_store.options)
    summary = run_extract(cfg, small_demo, remote.location, workers=2, storage_options=object_store.options)
    assert summary.complete and summary.written == summary.shards > 1 and "2 worker" in summary.executor
    assert summary.out_dir == remote.url
    _assert_same_shards(remote, local)

    entries = json.loads(remote.read_text(MANIFEST))["shards"]
    assert entries == json.loads(local.read_text(MANIFEST))["shards"], "same bytes, sizes and sha256"
    for entry in entries:  # what the manifest records is what the store holds
        assert hashlib.sha256(remote.read_bytes(entry["file"])).hexdigest() == entry["sha256"]
    assert sorted(remote.names()) == sorted([*local.names()])
    assert LEASE_NAME not in remote.names()


@contextmanager
def _watch(prefix: Folder, seen: list[tuple[str, bool]]) -> Iterator[None]:
    """List ``prefix`` over and over while the block runs; record each shard seen and whether its
    footer read back whole."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.1):
            for name in prefix.names():
                if is_shard_name(name):
                    seen.append((name, footer_in(prefix, name) is not None))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.mark.slow
def test_a_worker_killed_before_its_upload_leaves_nothing_partial_and_the_rerun_writes_only_its_shard(
    small_demo: Path, tmp_path: Path, object_store, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    cfg = build_config("demo", {"modalities": ["text"], "shard_size": 2})
    local = Folder.of(tmp_path / "local")
    clean = run_extract(cfg, small_demo, local.location, synchronous=True)
    shards = sorted(n for n in local.names() if is_shard_name(n))
    victim = shards[1]
    prefix = Folder.of(object_store.bucket() + "/demo", object_store.options)

    seen: list[tuple[str, bool]] = []
    monkeypatch.setenv(EXIT_BEFORE_UPLOAD_ENV, victim)  # the worker writing it dies (os._exit) before its PUT
    # No retries: the task that killed its worker fails the shard (Dask would otherwise rerun it).
    with _watch(prefix, seen), dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        killed = run_extract(cfg, small_demo, prefix.location, workers=2, storage_options=object_store.options)
    # Tasks queued on the dead worker fail with it, so more than the victim may be missing.
    missing = set(killed.shard_errors)
    assert not killed.complete and victim in missing and "KilledWorker" in killed.shard_errors[victim]
    assert len(missing) < len(shards), "the other worker finished shards"
    assert sorted(prefix.names()) == sorted({*shards, UTTERANCES, FAILURES} - missing), "no manifest, no lease"
    assert seen and all(whole for _, whole in seen), "every shard ever listed read back whole"
    assert not missing & {name for name, _ in seen}

    monkeypatch.delenv(EXIT_BEFORE_UPLOAD_ENV)
    resumed = run_extract(cfg, small_demo, prefix.location, workers=2, storage_options=object_store.options)
    assert resumed.complete and resumed.shards == clean.shards
    assert (resumed.written, resumed.skipped) == (len(missing), clean.shards - len(missing))
    _assert_same_shards(prefix, local)


def test_memory_url_in_process_resumes_from_its_footers(small_demo: Path, tmp_path: Path) -> None:
    """Any fsspec URL works: memory:// (one process only, so --synchronous)."""
    cfg = build_config("demo", TEXT_ONLY)
    url = f"memory://emoprep-{tmp_path.name}/demo"
    first = run_extract(cfg, small_demo, url, synchronous=True)
    again = run_extract(cfg, small_demo, url, synchronous=True)
    assert first.complete and first.written == first.shards > 1
    assert (again.written, again.skipped) == (0, first.shards)
    run_extract(cfg, small_demo, tmp_path / "local", synchronous=True)
    _assert_same_shards(Folder.of(url), Folder.of(tmp_path / "local"))


def test_on_s3_another_configuration_is_refused_and_stale_shards_are_removed(
    small_demo: Path, object_store,  # noqa: ANN001
) -> None:
    prefix = Folder.of(object_store.bucket() + "/demo", object_store.options)
    first = run_extract(build_config("demo", TEXT_ONLY), small_demo, prefix.location, synchronous=True,
                        storage_options=object_store.options)
    other = build_config("demo", {**TEXT_ONLY, "text": {"drop_nonverbal": False}})
    with pytest.raises(SetupError, match=f"{first.shards} shard\\(s\\) written with config"):
        run_extract(other, small_demo, prefix.location, synchronous=True, storage_options=object_store.options)
    assert MANIFEST in prefix.names() and LEASE_NAME not in prefix.names(), "a refused run changes nothing"

    stale = "train-00098-of-00099.parquet"  # a shard of a plan no longer in use
    prefix.write_bytes(stale, b"not a shard")
    replaced = run_extract(other, small_demo, prefix.location, synchronous=True, overwrite=True,
                           storage_options=object_store.options)
    assert replaced.complete and replaced.written == replaced.shards and stale not in prefix.names()
    assert json.loads(prefix.read_text(MANIFEST))["config_hash"] == other.config_hash


def test_a_resumed_run_on_s3_takes_each_shards_sha256_from_its_upload(
    small_demo: Path, object_store, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """A rerun over complete shards lists them in its manifest without downloading them: the sha256
    checked before each upload travels with the object; a shard put there some other way (no such
    metadata) is downloaded and hashed, as on any other store."""
    from emoprep.extraction.engine import worker

    prefix = Folder.of(object_store.bucket() + "/demo", object_store.options)
    cfg = build_config("demo", TEXT_ONLY)
    first = run_extract(cfg, small_demo, prefix.location, synchronous=True, storage_options=object_store.options)
    listed = json.loads(prefix.read_text(MANIFEST))["shards"]
    assert all(prefix.recorded_sha256(s["file"]) == s["sha256"] for s in listed)
    assert all(hashlib.sha256(prefix.read_bytes(s["file"])).hexdigest() == s["sha256"] for s in listed)

    plain = listed[0]["file"]
    data = prefix.read_bytes(plain)
    prefix.write_bytes(plain, data)  # the same bytes, put without the metadata (a user's own copy)
    assert prefix.recorded_sha256(plain) is None
    hashed: list[int] = []
    real = worker.sha256_stream
    monkeypatch.setattr(worker, "sha256_stream", lambda f: hashed.append(1) or real(f))
    again = run_extract(cfg, small_demo, prefix.location, synchronous=True, storage_options=object_store.options)
    assert (again.written, again.skipped) == (0, first.shards)
    assert len(hashed) == 1, "only the shard without recorded sha256 is downloaded to hash it"
    assert json.loads(prefix.read_text(MANIFEST))["shards"] == listed
