"""The output folder's lock: one holder, a clear refusal, dead runs' locks taken over, other hosts' kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from emoprep.extraction.engine.lock import LOCK_NAME, LockOwner, OutputLock, OutputLocked, shown_command

HOLDER = """
import sys
from pathlib import Path
from emoprep.extraction.engine.lock import OutputLock
lock = OutputLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.readline()
"""


def _write_record(out: Path, **fields: object) -> Path:
    record = {"pid": 1, "host": socket.gethostname(), "started": "2020-01-01T00:00:00+00:00",
              "started_unix": time.time(), "command": "emoprep extract --out x"}
    record.update(fields)
    path = out / LOCK_NAME
    path.write_text(json.dumps(record))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_holder_is_refused_with_the_first_ones_pid_host_and_start(tmp_path: Path) -> None:
    with OutputLock(tmp_path) as first:
        with pytest.raises(OutputLocked) as refused:
            OutputLock(tmp_path).acquire()
        message = str(refused.value)
        assert f"pid {os.getpid()}" in message and socket.gethostname() in message
        assert first.owner.started in message and "--out" in message
        assert refused.value.owner == first.owner
    assert not (tmp_path / LOCK_NAME).exists()
    with OutputLock(tmp_path):  # free again once released
        pass


def test_a_lock_held_by_another_process_then_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(OutputLocked, match=f"pid {proc.pid} on host"):
            OutputLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / LOCK_NAME).exists(), "a killed run cannot clean up: its lock file stays"
    lock = OutputLock(tmp_path).acquire()
    try:
        assert lock.cleared is not None and lock.cleared.pid == proc.pid
        assert LockOwner.parse((tmp_path / LOCK_NAME).read_text()) == lock.owner
    finally:
        lock.release()


def test_a_stale_lock_of_a_dead_pid_on_this_host_is_cleared(tmp_path: Path) -> None:
    pid = _dead_pid()
    _write_record(tmp_path, pid=pid)
    with OutputLock(tmp_path) as lock:
        assert lock.cleared is not None and lock.cleared.pid == pid
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_recorded_live_process_is_trusted_even_when_its_flock_is_free(tmp_path: Path) -> None:
    """On a file system whose flock does nothing the record is all there is: a live pid here means busy."""
    parent = os.getppid()
    _write_record(tmp_path, pid=parent, started_unix=psutil.Process(parent).create_time() + 5)
    with pytest.raises(OutputLocked, match="still running"):
        OutputLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == parent, "a refused run must not touch it"


def test_a_pid_reused_by_a_newer_process_is_stale(tmp_path: Path) -> None:
    me = psutil.Process(os.getpid())
    _write_record(tmp_path, pid=me.pid, started_unix=me.create_time() - 3600)  # taken before we started
    with OutputLock(tmp_path) as lock:
        assert lock.cleared is not None


def test_another_hosts_lock_is_kept_and_the_message_says_how_to_remove_it(tmp_path: Path) -> None:
    path = _write_record(tmp_path, host="gpu-node-7.example", pid=4242)
    with pytest.raises(OutputLocked) as refused:
        OutputLock(tmp_path).acquire()
    message = str(refused.value)
    assert "pid 4242 on host gpu-node-7.example" in message and "another host" in message
    assert f"delete {path}" in message
    assert json.loads(path.read_text())["host"] == "gpu-node-7.example"


def test_an_empty_lock_file_nobody_holds_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("")  # a run killed between creating and writing it
    with OutputLock(tmp_path) as lock:
        assert lock.cleared is None
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_released_when_the_run_raises(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), OutputLock(tmp_path):
        raise KeyboardInterrupt
    assert not (tmp_path / LOCK_NAME).exists()


def test_break_lock_takes_over_another_hosts_lock(tmp_path: Path) -> None:
    _write_record(tmp_path, host="gpu-node-7.example", pid=4242)
    with OutputLock(tmp_path, break_lock=True) as lock:
        assert lock.cleared is not None and lock.cleared.host == "gpu-node-7.example"
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_break_lock_never_takes_a_live_process_of_this_host(tmp_path: Path) -> None:
    parent = os.getppid()
    _write_record(tmp_path, pid=parent, started_unix=psutil.Process(parent).create_time() + 5)
    with pytest.raises(OutputLocked, match="still running"):
        OutputLock(tmp_path, break_lock=True).acquire()


def test_the_recorded_command_hides_storage_option_values() -> None:
    shown = shown_command(["emoprep", "extract", "--storage-option", "secret=hunter2", "--storage-option=key=k1",
                           "--out", "s3://b/x"])
    assert "hunter2" not in shown and "k1" not in shown
    assert shown == "emoprep extract --storage-option '***' '--storage-option=***' --out s3://b/x"
