"""A run folder on object storage, worked on through a local copy whose files are put back whole.

A training run appends to ``history.jsonl``, rewrites ``last.pt`` every epoch and writes Parquet and
JSON with libraries that want a local file; ``emoprep evaluate``, ``report`` and ``predict`` read
the same files with ``torch.load`` and pyarrow.  Rather than teach each of them object storage, a run
folder given as a URL is *pulled* into a temporary local folder, every step reads and writes there as
in any local run folder, and :meth:`WorkingCopy.push` puts each file that changed to its key in one
upload (``Folder.put``), so an object holds its previous version or its new one, never a part.
``metrics.json`` and ``run.json`` go last in a push: a reader that sees the run finished finds its
predictions there too.  A local run folder is its own working copy: nothing is copied and
:meth:`~WorkingCopy.push` does nothing, so local runs behave exactly as before.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .manifest import StorageOptions
from .names import METRICS, RUN_RECORD, TMP_MARKER
from .storage import Folder

PUT_LAST = (METRICS, RUN_RECORD)
"""Put after every other file: together they say that a run is finished."""


class WorkingCopy:
    """The local folder a run's files are read and written in, and the run folder it stands for."""

    def __init__(self, location: str | Path | Folder, storage_options: StorageOptions = None) -> None:
        self.folder = Folder.of(location, storage_options)
        self.path = self.folder.local or Path(tempfile.mkdtemp(prefix=f"emoprep-{self.folder.name}-"))
        self._stamps: dict[str, tuple[int, int]] = {}
        """What each file was when last pulled or pushed (size, mtime): a push puts only the others."""

    @property
    def remote(self) -> bool:
        return self.folder.remote

    @property
    def url(self) -> str:
        """The run folder as shown to a person (never the temporary copy, never a credential)."""
        return self.folder.url

    def shown(self, name: str) -> str:
        """File ``name`` of the run folder, as shown to a person."""
        return self.folder.display(name)

    def holds_anything(self) -> bool:
        """Whether the run folder exists and is not empty."""
        if not self.remote:
            return self.path.exists() and any(self.path.iterdir())
        return bool(self.folder.files())

    def pull(self) -> None:
        """Copy every file of the run folder (``evaluations/`` included) into the working copy."""
        if not self.remote:
            return
        for name in self.folder.files():
            self.folder.download(name, self.path / name)
        self._stamps = self._local_stamps()

    def fetch(self, name: str) -> None:
        """Copy file ``name`` of the run folder into the working copy (another process put it there)."""
        if self.remote:
            self.folder.download(name, self.path / name)
            self._stamps[name] = self._local_stamps()[name]

    def push(self) -> None:
        """Put every file created or changed since the last pull or push, :data:`PUT_LAST` last."""
        if not self.remote:
            return
        stamps = self._local_stamps()
        changed = [name for name, stamp in stamps.items() if self._stamps.get(name) != stamp]
        for name in sorted(changed, key=lambda n: (PUT_LAST.index(n) + 1 if n in PUT_LAST else 0, n)):
            self.folder.put(self.path / name, name)
        self._stamps = stamps

    def close(self) -> None:
        """Remove the temporary copy (a local run folder is left alone)."""
        if self.remote:
            shutil.rmtree(self.path, ignore_errors=True)

    def _local_stamps(self) -> dict[str, tuple[int, int]]:
        """``{name: (size, mtime_ns)}`` of the finished files of the working copy (files being written
        carry :data:`~emoprep.format.names.TMP_MARKER` or a ``.tmp`` suffix and are not put)."""
        out = {}
        for p in self.path.rglob("*"):
            if p.is_file() and TMP_MARKER not in p.name and p.suffix != ".tmp":
                st = p.stat()
                out[p.relative_to(self.path).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out


@contextmanager
def working_copy(location: str | Path | Folder, storage_options: StorageOptions = None, *,
                 pull: bool = True) -> Iterator[WorkingCopy]:
    """A :class:`WorkingCopy` of the run folder ``location`` (pulled first unless ``pull`` is False),
    removed on the way out; pushing is the caller's, at the points where the run is consistent."""
    copy = WorkingCopy(location, storage_options)
    try:
        if pull:
            copy.pull()
        yield copy
    finally:
        copy.close()
