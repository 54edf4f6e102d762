"""A corpus tree on object storage, read as a local one: a temporary mirror of its metadata only.

The corpus readers walk a tree of small files (transcripts, label CSVs, the SDK ``.csd``, split
lists) beside gigabytes of recordings.  For a URL root (``--root s3://bucket/MOSEI``) the prefix is
listed once, the files the reader reads (its layout's metadata patterns, plus files named by its
options) are downloaded in one batch (fsspec fetches them concurrently) into a temporary folder
that keeps their relative paths, and the reader runs over that folder unchanged.  The recordings
stay where they are: the listing answers "does it exist", :class:`~emoprep.extraction.readers.media_index.RemoteMedia`
turns a layout path into its URL and probes its header; the workers fetch them later.  So reading
costs the metadata's bytes plus a header per recording, and the mirror is removed when the read
ends, whatever happens.

Paths the reader reports (issue sources, error messages) name the mirror; :meth:`Mirror.shown`
puts the root URL back, so what a person sees names the bucket, never a temporary folder.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ...format.storage import Folder
from .media_index import RemoteMedia


def matches(name: str, pattern: str) -> bool:
    """Whether the ``/``-separated ``name`` matches ``pattern`` part by part (``*`` stays inside
    one folder, as ``Path.glob`` has it, unlike :func:`fnmatch.fnmatch` on the whole string)."""
    parts, wanted = name.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatchcase(p, w) for p, w in zip(parts, wanted))


def named_paths(values: Iterable[object]) -> tuple[str, ...]:
    """Option values that may name a file or folder under the root (relative paths), normalised."""
    found = []
    for value in values:
        if isinstance(value, str) and value.strip() and "://" not in value and not value.startswith(("/", "~")):
            found.append(posixpath.normpath(value.strip()))
    return tuple(found)


def selector(patterns: Iterable[str], named: Iterable[str]) -> Callable[[str], bool]:
    """``wanted(name)``: a file matching one of ``patterns``, or a path in ``named`` (a file named,
    or any file below a folder named)."""
    patterns, named = tuple(patterns), tuple(named)

    def wanted(name: str) -> bool:
        return any(matches(name, p) for p in patterns) or any(name == n or name.startswith(n + "/") for n in named)

    return wanted


@dataclass(frozen=True)
class Mirror:
    """The local mirror of a corpus URL: where the reader reads, and how to find its media."""

    root: Path
    """The temporary folder the reader reads, the tree's relative paths kept."""
    url: str
    """The root URL as shown (credential-free)."""
    media: RemoteMedia
    """The recordings, answered from the listing and named by URL."""
    downloaded: dict[str, int]
    """The files copied into the mirror (the metadata): name -> size in bytes."""

    @property
    def downloaded_bytes(self) -> int:
        """What reading cost beside the media headers."""
        return sum(self.downloaded.values())

    def shown(self, text: str) -> str:
        """``text`` with the mirror's path replaced by the root URL."""
        return text.replace(str(self.root), self.url)


@contextmanager
def metadata_mirror(url: str, options: Mapping[str, Any], wanted: Callable[[str], bool]) -> Iterator[Mirror]:
    """A temporary local copy of the files under ``url`` that ``wanted(name)`` accepts (every other
    file is only listed), removed on exit."""
    folder = Folder(url, dict(options))
    prefix = folder.path("")
    sizes = {key[len(prefix):]: int(info.get("size") or 0) for key, info in folder.fs.find(prefix, detail=True).items()
             if info.get("type") == "file" and key.startswith(prefix) and not key.endswith("/")}
    files = frozenset(sizes)
    root = Path(tempfile.mkdtemp(prefix="emoprep-corpus-")).resolve()
    try:
        for name in files:  # every folder of the tree, so the reader's is_dir() checks see it as it is
            (root / name).parent.mkdir(parents=True, exist_ok=True)
        chosen = sorted(n for n in files if wanted(n))
        if chosen:
            folder.fs.get([folder.path(n) for n in chosen], [str(root / n) for n in chosen])
        yield Mirror(root, folder.url, RemoteMedia(root, folder.location, files, dict(options)),
                     {n: sizes[n] for n in chosen})
    finally:
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["Mirror", "matches", "metadata_mirror", "named_paths", "selector"]
