"""One writer per object-storage prefix: a lease object, created exclusively and renewed by its run.

Object storage has no ``flock`` and no way to see whether the process that wrote an object still
lives, so the local lock (:mod:`emoprep.extraction.engine.lock`) becomes a *lease* there:

* ``PREFIX/.emoprep.lease`` is created with an exclusive create (S3 ``If-None-Match: *``): of two
  runs that start together exactly one gets it.  It records who holds it (pid, host, start, the
  command with storage options hidden), a random token, and when it expires.
* The run renews it from a background thread every ``ttl / 3`` seconds (default ttl: two minutes),
  so it stays live as long as the run does, and deletes it at the end.  A run killed in any way stops
  renewing, and its lease expires at most ``ttl`` later.
* A second run is refused with who holds the prefix while the lease is live.  An expired lease is
  taken over only with ``--break-lock`` (the user says that run is gone), with a warning; a lease of a
  dead process on this same host is taken over as the local lock would be.
* Before the manifest is written the run checks that the lease is still its own (:meth:`confirm`),
  and the manifest itself is an exclusive create: a run whose lease was taken over after it stalled
  cannot finish into the prefix as well.

Expiry is the holder's clock (UTC seconds): clocks of the machines involved should agree to well
within the ttl, as NTP keeps them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from ...errors import SetupError
from ...format.storage import Folder
from .lock import LockOwner, OutputLocked, process_alive

LEASE_NAME = ".emoprep.lease"
"""Starts with a dot and matches no shard pattern: leftover clean-up and readers never see it."""
DEFAULT_TTL_S = 120.0
_ATTEMPTS = 5


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LeaseRecord:
    """The content of a lease object."""

    owner: LockOwner
    token: str
    ttl_s: float
    expires_unix: float

    @classmethod
    def new(cls, owner: LockOwner, ttl_s: float) -> LeaseRecord:
        return cls(owner, uuid.uuid4().hex, ttl_s, time.time() + ttl_s)

    def renewed(self) -> LeaseRecord:
        return LeaseRecord(self.owner, self.token, self.ttl_s, time.time() + self.ttl_s)

    def to_bytes(self) -> bytes:
        return json.dumps({**asdict(self.owner), "token": self.token, "ttl_s": self.ttl_s,
                           "expires": _iso(self.expires_unix), "expires_unix": self.expires_unix}).encode()

    @classmethod
    def parse(cls, data: bytes) -> LeaseRecord | None:
        """The record in ``data``; None when it is not one of ours."""
        try:
            d: Any = json.loads(data)
            owner = LockOwner.parse(json.dumps(d))
            if owner is None:
                return None
            return cls(owner, str(d["token"]), float(d["ttl_s"]), float(d["expires_unix"]))
        except (ValueError, KeyError, TypeError):
            return None

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_unix

    def describe(self) -> str:
        return f"{self.owner.describe()}; lease expires {_iso(self.expires_unix)} unless renewed"


class OutputLease:
    """``with OutputLease(folder) as lease:`` — hold an object-storage prefix for one run.

    The same interface as :class:`~emoprep.extraction.engine.lock.OutputLock`: ``cleared`` names the
    run whose lease was taken over, :meth:`confirm` raises if this run no longer holds the prefix.
    """

    def __init__(self, out: Folder, *, ttl_s: float = DEFAULT_TTL_S, break_lock: bool = False) -> None:
        if ttl_s <= 0:
            raise ValueError("the lease ttl must be positive")
        self.out = out
        self.break_lock = break_lock
        self.record = LeaseRecord.new(LockOwner.me(), ttl_s)
        self.cleared: LockOwner | None = None
        self.lost: str | None = None
        """Why this run no longer holds the prefix (set by the renewer), else None."""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # --- taking it -----------------------------------------------------------------------------
    def acquire(self) -> OutputLease:
        for _ in range(_ATTEMPTS):
            if self._create():
                self._start_renewing()
                return self
            try:
                previous = self.out.read_bytes(LEASE_NAME)
            except FileNotFoundError:
                continue  # released between our create and our read: try again
            self.cleared = self._judge(LeaseRecord.parse(previous))
            self.out.remove(LEASE_NAME)
        raise OutputLocked(f"{self.out.url} is being leased and released by other runs faster than this run "
                           "can take it; try again in a moment", None)

    def _create(self) -> bool:
        """Create the lease object; False when one exists.  A store that cannot be written (no such
        bucket, no permission) is a setup error: nothing has been written yet."""
        try:
            return self.out.create_exclusive(LEASE_NAME, self.record.to_bytes())
        except OSError as exc:
            raise SetupError(f"{self.out.url}: cannot write there ({type(exc).__name__}: {exc})") from None

    def _judge(self, previous: LeaseRecord | None) -> LockOwner | None:
        """The owner of a lease this run may take over; raises while it belongs to a live run."""
        if previous is None:
            if self.break_lock:
                return None
            raise OutputLocked(
                f"{self.out.url} holds a lease object ({LEASE_NAME}) that is not an emoprep lease. If no run "
                "uses this prefix, rerun with --break-lock; otherwise choose another --out.", None)
        owner = previous.owner
        gone_here = owner.host == self.record.owner.host and not process_alive(owner.pid, owner.started_unix)
        if gone_here or (previous.expired() and self.break_lock):
            return owner
        if previous.expired():
            raise OutputLocked(
                f"{self.out.url} is leased to an emoprep run that stopped renewing it ({previous.describe()}; "
                "it has expired): that run was killed or lost its machine. Rerun with --break-lock to take "
                "over, or choose another --out.", owner)
        raise OutputLocked(
            f"{self.out.url} is in use by another emoprep run ({previous.describe()}). Two runs writing "
            "into one prefix would replace each other's shards: wait for it to finish, or choose another "
            "--out. If that run is gone, its lease expires on its own; then rerun with --break-lock.", owner)

    # --- keeping it ----------------------------------------------------------------------------
    def _start_renewing(self) -> None:
        self._renewer = threading.Thread(target=self._renew_until_stopped, name="emoprep-lease", daemon=True)
        self._renewer.start()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.record.ttl_s / 3):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a store or network failure: retried until the lease runs out
                if self.record.expired():
                    self.lost = "the lease could not be renewed before it expired"
            if self.lost:
                return

    def _still_ours(self) -> bool:
        """Whether the lease object on the store is this run's; else says why in :attr:`lost`."""
        try:
            current = LeaseRecord.parse(self.out.read_bytes(LEASE_NAME))
        except FileNotFoundError:
            current = None
        if current is not None and current.token == self.record.token:
            return True
        self.lost = "another run took the lease over" if current else "the lease object was deleted"
        return False

    def renew(self) -> None:
        """Push the expiry one ttl ahead, if the lease is still this run's (else set :attr:`lost`)."""
        if not self._still_ours():
            return
        record = self.record.renewed()
        self.out.write_bytes(LEASE_NAME, record.to_bytes())
        self.record = record

    def confirm(self) -> None:
        """Raise :class:`OutputLocked` unless this run still holds the prefix (checked on the store)."""
        if self.lost is None:
            self._still_ours()
        if self.lost:
            raise OutputLocked(f"{self.out.url}: this run no longer holds the prefix ({self.lost}); it did "
                               "not write manifest.json. Rerun to finish.", None)

    # --- giving it back ------------------------------------------------------------------------
    def release(self) -> None:
        """Stop renewing and delete the lease object if it is still this run's."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if self.lost is None and self._still_ours():
            self.out.remove(LEASE_NAME)

    def __enter__(self) -> OutputLease:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
