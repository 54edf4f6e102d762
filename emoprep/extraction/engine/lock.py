"""One writer per output folder: an exclusive lock file held for the whole of a run.

Two runs writing into the same folder would each believe their shards complete while replacing the
other's.  A run therefore holds ``OUT/.emoprep.lock`` from start to end:

* The file is created atomically (``O_CREAT | O_EXCL``) and held with ``flock``.  The kernel drops a
  ``flock`` when its process dies, however it dies, so on one host a lock whose ``flock`` can be
  taken belongs to a dead run and is taken over (``kill -9``, a power cut, an OOM kill).
* The file holds who took it (pid, host, start time, command), as JSON, so that the run that is
  refused can say which run holds the folder.
* On another host neither the pid nor (on network file systems without working locks) the ``flock``
  tells whether that run still lives, so such a lock is taken over only when the user says that run
  is gone (``--break-lock``); the message says so.
* The recorded command hides the values of ``--storage-option`` (they may be credentials).

On object storage there is no ``flock``: :mod:`emoprep.extraction.engine.lease` keeps the same rule
with a lease object that the run renews.

The name starts with a dot and has no ``.tmp-`` marker and no shard pattern, so the pipeline's
clean-up of leftovers and readers that glob ``*-of-*.parquet`` never see it.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from ...errors import SetupError

try:
    import fcntl
except ImportError:  # Windows: no flock; the pid/host record alone decides
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".emoprep.lock"
_ATTEMPTS = 5
_SECRET_FLAGS = ("--storage-option",)
"""Flags whose values are never recorded: storage options may hold credentials."""


def shown_command(argv: list[str]) -> str:
    """``argv`` as a shell line, with the value of every :data:`_SECRET_FLAGS` flag replaced by ``***``."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if hide_next:
            shown.append("***")
        elif flag in _SECRET_FLAGS and "=" in arg:
            shown.append(f"{flag}=***")
        else:
            shown.append(arg)
        hide_next = arg in _SECRET_FLAGS
    return shlex.join(shown)


@dataclass(frozen=True)
class LockOwner:
    """Who holds an output folder, as recorded in its lock file."""

    pid: int
    host: str
    started: str
    """ISO time, UTC."""
    started_unix: float
    command: str

    @classmethod
    def me(cls) -> LockOwner:
        now = time.time()
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
            started_unix=now,
            command=shown_command([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python",
        )

    @classmethod
    def parse(cls, text: str) -> LockOwner | None:
        """The owner recorded in ``text``; None when it is empty or not ours (a run that died while
        writing it, or a file someone else put there)."""
        try:
            data: Any = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started"]), float(data["started_unix"]),
                       str(data.get("command", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}" + (
            f" ({self.command})" if self.command else "")


class OutputLocked(SetupError):
    """Another run holds the output folder (or may hold it: a lock taken on another host)."""

    def __init__(self, message: str, owner: LockOwner | None) -> None:
        super().__init__(message)
        self.owner = owner


def process_alive(pid: int, started_unix: float | None = None) -> bool:
    """Whether process ``pid`` of this host runs, and is not a newer process that reuses the pid."""
    import psutil  # declared in pyproject.toml (also a dependency of dask.distributed)

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    # A process created after the lock was taken cannot have taken it: the pid was reused.
    return started_unix is None or created <= started_unix + 1.0


def _try_flock(fd: int) -> bool | None:
    """True: we hold it; False: another open file holds it; None: this file system has no flock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a holder that finished unlinks it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class OutputLock:
    """``with OutputLock(out) as lock:`` — hold ``out`` for one run; see the module docstring.

    ``lock.cleared`` names the dead run whose lock was taken over, if any, so the caller can say so.
    ``break_lock`` takes over a lock recorded by another host (the user says that run is gone).
    """

    def __init__(self, out: Path, *, break_lock: bool = False) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.owner = LockOwner.me()
        self.break_lock = break_lock
        self.cleared: LockOwner | None = None
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        for _ in range(_ATTEMPTS):
            created = True
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                created = False
                try:
                    fd = os.open(self.path, os.O_RDWR)
                except FileNotFoundError:
                    continue  # released between our two opens: try to create it again
            try:
                if self._take(fd, created):
                    self._fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise OutputLocked(f"{self.out} is being locked and released by other runs faster than this run can "
                           "take it; try again in a moment", None)

    def _take(self, fd: int, created: bool) -> bool:
        """Make ``fd`` ours and write our record; False to start over; raises when held by another run."""
        flocked = _try_flock(fd)
        if flocked is False:
            raise self._busy(LockOwner.parse(_read(fd)), "it is running")
        if not _same_file(fd, self.path):
            return False  # the holder finished and removed it after we opened it
        if not created:
            previous = LockOwner.parse(_read(fd))
            self._judge(previous, flock_works=flocked is True)
            self.cleared = previous
        data = json.dumps(asdict(self.owner)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        return True

    def _judge(self, previous: LockOwner | None, *, flock_works: bool) -> None:
        """Raise unless the lock file left in the folder belongs to a run that is gone."""
        if previous is None:
            if flock_works:
                return  # a run that died before it wrote its record (nobody holds the flock)
            raise self._busy(None, "a run may be starting")
        if previous.host != self.owner.host:
            if self.break_lock:
                return
            raise OutputLocked(
                f"{self.out} is locked by another emoprep run: {previous.describe()}. That is another "
                f"host, so this one cannot tell whether the run is still going. If it is not (it was "
                f"killed, or its machine restarted), rerun with --break-lock (or delete {self.path}); "
                "if it is, wait for it or choose another --out.",
                previous,
            )
        if process_alive(previous.pid, previous.started_unix):
            raise self._busy(previous, "that process is still running")

    def _busy(self, owner: LockOwner | None, why: str) -> OutputLocked:
        who = owner.describe() if owner else "details not yet written"
        return OutputLocked(
            f"{self.out} is in use by another emoprep run ({who}; {why}). Two runs writing into one "
            "folder would replace each other's shards: wait for it to finish, or choose another --out. "
            f"If you are sure no run is using the folder, delete {self.path}.",
            owner,
        )

    def confirm(self) -> None:
        """Nothing to check: the ``flock`` is held until :meth:`release` (a lease may be lost: see
        :meth:`emoprep.extraction.engine.lease.OutputLease.confirm`)."""

    def release(self) -> None:
        """Remove the lock file (only if it is still ours) and drop the flock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, self.path) and LockOwner.parse(_read(fd)) == self.owner:
                os.unlink(self.path)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

