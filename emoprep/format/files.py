"""How the contract's small files are written and checked: atomic JSON and sha256.

A reader must see a whole ``manifest.json`` or ``run.json`` or none, so JSON goes to a temporary name
and is renamed; a shard's sha256 in the manifest is what ``inspect --verify`` compares against.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO

from .storage import Folder


def json_text(data: dict[str, Any]) -> str:
    """``data`` as the contract writes JSON files: indented, keys in their given order."""
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented JSON at ``path``, via a temporary file and ``os.replace``."""
    Folder.of(path.parent).write_text(path.name, json_text(data))


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 4 MiB blocks."""
    with open(path, "rb") as f:
        return sha256_stream(f)


def sha256_stream(f: BinaryIO) -> str:
    """The hex sha256 of what is left in an open binary file, read in 4 MiB blocks (an object on
    object storage is streamed, never held whole)."""
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 22), b""):
        h.update(block)
    return h.hexdigest()
