"""Where a corpus reader's media are, asked in one place: exists, which files a folder holds, the
location a record names, and where the file's content ends.

The corpus readers (MOSEI, IEMOCAP) find their media by layout paths under the dataset root.  On a
local root those paths are the media.  On a URL root (``s3://bucket/MOSEI``) the reader runs over a
local mirror of the metadata only (:mod:`emoprep.extraction.readers.mirror`), so a layout path
there names a recording that lives at the root URL: :class:`RemoteMedia` answers from the one
listing of the bucket, gives the URL to record (workers fetch it, :mod:`emoprep.extraction.media.fetch`)
and probes its header with ranged reads.  Readers ask a :class:`MediaIndex` instead of calling
``Path.is_file()``, so local and object storage differ in this module and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ...format.storage import join_url
from ..media.probe import media_end_s


class MediaIndex(Protocol):
    """The media of one read of a corpus tree, by their layout paths."""

    def exists(self, path: Path) -> bool:
        """Whether the recording at layout path ``path`` exists."""
        ...

    def stems(self, folder: Path, suffix: str) -> set[str]:
        """Names (without ``suffix``) of the ``suffix`` files directly in ``folder``."""
        ...

    def location(self, path: Path) -> str:
        """What records name the recording by: a local path or its URL (credential-free)."""
        ...

    def end_s(self, location: str) -> float | None:
        """Where the recording at ``location`` ends (s; None when unknown), from its header."""
        ...


class LocalMedia:
    """Media on the local disk, where the layout paths are the files themselves."""

    def exists(self, path: Path) -> bool:
        return path.is_file()

    def stems(self, folder: Path, suffix: str) -> set[str]:
        return {p.stem for p in folder.glob(f"*{suffix}")} if folder.is_dir() else set()

    def location(self, path: Path) -> str:
        return str(path)

    def end_s(self, location: str) -> float | None:
        return media_end_s(location)


@dataclass
class RemoteMedia:
    """Media under the URL ``url``, read over the local ``mirror`` of its metadata.

    ``files`` are the ``/``-separated names of every object under ``url`` (one listing, taken when
    the mirror was made); ``options`` the storage options of the probes (never shown)."""

    mirror: Path
    url: str
    files: frozenset[str]
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.mirror).as_posix()

    def exists(self, path: Path) -> bool:
        return self._relative(path) in self.files

    def stems(self, folder: Path, suffix: str) -> set[str]:
        inside = PurePosixPath(self._relative(folder))
        names = (PurePosixPath(f) for f in self.files)
        return {n.name[: -len(suffix)] for n in names if n.parent == inside and n.name.endswith(suffix)}

    def location(self, path: Path) -> str:
        return join_url(self.url, self._relative(path))

    def end_s(self, location: str) -> float | None:
        return media_end_s(location, self.options)


__all__ = ["LocalMedia", "MediaIndex", "RemoteMedia"]
