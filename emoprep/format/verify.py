"""Check a finished shard folder against its manifest: every file there, whole, and unchanged.

``manifest.json`` records each shard's size and sha256 when the run ends.  A copy to another
machine, a sync tool or a failing disk can truncate or alter a file later, and a Parquet reader may
not notice (a flipped byte inside compressed page data can decode to wrong values).  Comparing
sizes and checksums catches that; it reads every byte once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .files import sha256_stream
from .manifest import StorageOptions, read_manifest, shard_folder
from .names import MANIFEST, is_shard_name
from .storage import Folder


@dataclass(frozen=True)
class Problem:
    """One file that does not match the manifest."""

    file: str
    kind: str
    """``missing``, ``size``, ``sha256``, ``unreadable`` or ``unlisted``."""
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def verify_output(path: str | Path, storage_options: StorageOptions = None) -> tuple[int, list[Problem]]:
    """``(files checked, problems)`` for the shard folder ``path`` (or its ``manifest.json``; a local
    path or a URL, with ``storage_options`` for its store).

    Shards are checked for size and sha256 (an object is streamed through the hash, not downloaded
    first); the other files the manifest names (the plan and ``failures.parquet``) have no recorded
    checksum, so they are checked for being readable Parquet; a shard file the manifest does not list
    is reported too, because readers that glob ``*-of-*.parquet`` would read it.  Raises
    ``FileNotFoundError`` when there is no manifest.
    """
    root = shard_folder(path, storage_options)
    manifest = read_manifest(root)
    present = set(root.names())
    problems: list[Problem] = []
    listed = set()
    for shard in manifest.shards:
        listed.add(shard.file)
        problems += _check_shard(root, present, shard.file, shard.bytes, shard.sha256)
    checked = len(listed)
    for name in manifest.files.values():
        checked += 1
        problems += _check_parquet(root, present, name)
    for name in sorted(present):
        if is_shard_name(name) and name not in listed:
            problems.append(Problem(name, "unlisted", "a shard file the manifest does not list (readers that "
                                                      "glob *-of-*.parquet would read it); delete it or rerun"))
    return checked, problems


def _check_shard(root: Folder, present: set[str], name: str, size: int | None, sha256: str | None) -> list[Problem]:
    if name not in present:
        return [Problem(name, "missing", f"listed in {MANIFEST} but not in the folder")]
    actual = root.size(name)
    if size is not None and actual != size:
        return [Problem(name, "size", f"{actual} bytes, {MANIFEST} says {size} (truncated or replaced)")]
    if sha256:
        with root.open(name) as f:
            if sha256_stream(f) != sha256:
                return [Problem(name, "sha256", f"content differs from {MANIFEST}'s sha256 (altered or damaged)")]
    return []


def _check_parquet(root: Folder, present: set[str], name: str) -> list[Problem]:
    if name not in present:
        return [Problem(name, "missing", f"named in {MANIFEST} but not in the folder")]
    fs, base = root.arrow()
    try:
        pq.read_metadata(f"{base}/{name}", filesystem=fs)
    except (OSError, pa.ArrowInvalid) as exc:
        return [Problem(name, "unreadable", f"not readable as Parquet ({exc})")]
    return []
