"""One writer per object-storage prefix: the lease object (emoprep.extraction.engine.lease) on moto's
real S3 server — exclusive, renewed, released, refused with its holder, taken over only when expired
(with --break-lock) — a second `emoprep extract` refused while a lease is live, and the manifest
created only once."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from emoprep.extraction.engine.lease import LEASE_NAME, LeaseRecord, OutputLease
from emoprep.extraction.engine.lock import LockOwner, OutputLocked
from emoprep.format.manifest import Manifest, remove_manifest, write_manifest
from emoprep.format.names import MANIFEST
from emoprep.format.storage import Folder


@pytest.fixture
def prefix(object_store) -> Folder:  # noqa: ANN001
    return Folder.of(object_store.bucket() + "/demo", object_store.options)


def _plant(prefix: Folder, *, host: str, pid: int, expires_in: float) -> LeaseRecord:
    """A lease of another run, as that run would have written it."""
    owner = LockOwner(pid=pid, host=host, started="2026-01-01T00:00:00+00:00", started_unix=time.time() - 600,
                      command="emoprep extract")
    record = LeaseRecord(owner, "their-token", 60.0, time.time() + expires_in)
    assert prefix.create_exclusive(LEASE_NAME, record.to_bytes())
    return record


def test_a_lease_is_exclusive_renewed_and_released(prefix: Folder) -> None:
    with OutputLease(prefix, ttl_s=30) as lease:
        first = LeaseRecord.parse(prefix.read_bytes(LEASE_NAME))
        assert first is not None and first.token == lease.record.token and first.owner.host == socket.gethostname()
        with pytest.raises(OutputLocked, match=f"pid {first.owner.pid} on host {first.owner.host}"):
            OutputLease(prefix, ttl_s=30).acquire()
        time.sleep(0.05)
        lease.renew()
        renewed = LeaseRecord.parse(prefix.read_bytes(LEASE_NAME))
        assert renewed is not None and renewed.expires_unix > first.expires_unix
        lease.confirm()
    assert LEASE_NAME not in prefix.names()


def test_the_driver_renews_in_the_background(prefix: Folder) -> None:
    with OutputLease(prefix, ttl_s=1.5):
        first = LeaseRecord.parse(prefix.read_bytes(LEASE_NAME))
        time.sleep(2.5)  # past the first ttl: only renewal keeps it live
        now = LeaseRecord.parse(prefix.read_bytes(LEASE_NAME))
        assert first is not None and now is not None
        assert not now.expired() and now.expires_unix > first.expires_unix


def test_an_expired_lease_needs_break_lock_and_a_live_one_is_never_broken(prefix: Folder) -> None:
    _plant(prefix, host="gpu-node-7.example", pid=4242, expires_in=60)
    with pytest.raises(OutputLocked, match="pid 4242 on host gpu-node-7.example") as live:
        OutputLease(prefix, break_lock=True).acquire()
    assert "in use by another emoprep run" in str(live.value)
    prefix.remove(LEASE_NAME)

    _plant(prefix, host="gpu-node-7.example", pid=4242, expires_in=-1)
    with pytest.raises(OutputLocked, match="--break-lock"):
        OutputLease(prefix).acquire()
    assert json.loads(prefix.read_bytes(LEASE_NAME))["token"] == "their-token", "a refused run must not touch it"
    with OutputLease(prefix, break_lock=True) as lease:
        assert lease.cleared is not None and lease.cleared.host == "gpu-node-7.example"
        assert json.loads(prefix.read_bytes(LEASE_NAME))["token"] == lease.record.token


def test_a_run_whose_lease_was_taken_over_cannot_finish(prefix: Folder) -> None:
    lease = OutputLease(prefix, ttl_s=30).acquire()
    try:
        prefix.remove(LEASE_NAME)
        _plant(prefix, host="gpu-node-7.example", pid=4242, expires_in=60)  # another run broke it
        with pytest.raises(OutputLocked, match="no longer holds"):
            lease.confirm()
    finally:
        lease.release()
    assert json.loads(prefix.read_bytes(LEASE_NAME))["token"] == "their-token", "release leaves theirs alone"


def test_a_second_extract_is_refused_while_the_lease_is_live(prefix: Folder, object_store, small_demo: Path) -> None:  # noqa: ANN001
    holder = _plant(prefix, host="gpu-node-7.example", pid=4242, expires_in=60)
    args = ["extract", "--dataset", "demo", "--root", str(small_demo), "--out", prefix.location,
            "--modalities", "text", "--synchronous", "--quiet", *object_store.option_flags()]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2, refused.output
    said = " ".join(refused.output.split())  # rich wraps lines
    assert "pid 4242 on host gpu-node-7.example" in said and holder.owner.started in said
    assert prefix.names() == [LEASE_NAME], "a refused run writes nothing"

    prefix.write_bytes(LEASE_NAME, LeaseRecord(holder.owner, holder.token, 60.0, time.time() - 1).to_bytes())
    taken = CliRunner().invoke(main, [*args, "--break-lock"])
    assert taken.exit_code == 0, taken.output
    said = " ".join(taken.output.split())
    assert "warning: took over the output of a run that is gone (pid 4242 on host gpu-node-7.example" in said
    assert "manifest.json" in prefix.names() and LEASE_NAME not in prefix.names()


def test_on_object_storage_the_manifest_is_created_only_once(prefix: Folder) -> None:
    """The last guard of one writer: of two runs that reach the end in one prefix, one finishes it."""
    first = Manifest(dataset="demo", config_hash="aaa")
    assert write_manifest(prefix, first) == f"{prefix.url}/{MANIFEST}"
    with pytest.raises(FileExistsError, match="written by another run"):
        write_manifest(prefix, Manifest(dataset="demo", config_hash="bbb"))
    assert json.loads(prefix.read_text(MANIFEST))["config_hash"] == "aaa"
    remove_manifest(prefix)  # what a run does at its start
    write_manifest(prefix, Manifest(dataset="demo", config_hash="ccc"))
    assert json.loads(prefix.read_text(MANIFEST))["config_hash"] == "ccc"
