"""Write a validated table to its final name atomically, and recognise a complete shard on disk.

A shard is written to a hidden temporary name in the output folder and renamed into place, so a
reader (or a resumed run) sees either the whole file or no file.  Its Parquet key-value metadata
records what produced it; :func:`existing_shard_metadata` reads only the footer to decide whether a
rerun may skip it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import META_PREFIX, SCHEMA_VERSION

TMP_MARKER = ".tmp-"
ROW_GROUP_ROWS = 16
"""Small row groups: shards hold megabytes of face crops and spectrograms per row, and readers that
want a few rows (a DataLoader over shards) should not have to decompress the whole file."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def encode_metadata(meta: dict[str, Any]) -> dict[bytes, bytes]:
    """``emoprep.*`` keys with JSON values (plain strings stay strings)."""
    out = {}
    for key, value in meta.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out[(META_PREFIX + key).encode()] = text.encode()
    return out


def decode_metadata(raw: dict[bytes, bytes] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        k = key.decode()
        if not k.startswith(META_PREFIX):
            continue
        text = value.decode()
        try:
            out[k[len(META_PREFIX):]] = json.loads(text)
        except json.JSONDecodeError:
            out[k[len(META_PREFIX):]] = text
    return out


def write_atomic(table: pa.Table, path: Path, meta: dict[str, Any]) -> None:
    """Write ``table`` with ``meta`` to ``path`` via a temporary file and ``os.replace``.

    ``meta`` is added to the table's own schema metadata, not put in its place: a shard's table
    carries the ``huggingface`` features key from :func:`emoprep.schema.utterance_schema`, which
    HuggingFace ``datasets`` needs to decode the face crops."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **encode_metadata(meta)})
    tmp = path.with_name(f".{path.name}{TMP_MARKER}{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS, write_statistics=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def existing_shard_metadata(path: Path) -> dict[str, Any] | None:
    """The emoprep metadata of a readable Parquet file at ``path``, else None (absent or damaged)."""
    if not path.is_file():
        return None
    try:
        md = pq.read_metadata(path)
        meta = decode_metadata(pq.read_schema(path).metadata)
    except (OSError, pa.ArrowInvalid):
        return None
    meta["_num_rows"] = md.num_rows
    return meta


def is_complete(meta: dict[str, Any] | None, config_hash: str, ids_sha256: str, rows: int) -> bool:
    """Whether a shard on disk was written by this configuration for exactly these utterances."""
    if meta is None:
        return False
    shard = meta.get("shard") or {}
    return (
        str(meta.get("schema_version")) == str(SCHEMA_VERSION)
        and meta.get("config_hash") == config_hash
        and shard.get("ids_sha256") == ids_sha256
        and meta.get("_num_rows") == rows
    )
