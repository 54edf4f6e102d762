"""A shard's Parquet footer: the ``emoprep.*`` key-value metadata that says what wrote it.

Every shard (and ``utterances.parquet``, ``failures.parquet``) carries its schema version, config
hash, emoprep version, label names, backends and failures as ``emoprep.<key>`` entries with JSON
values, beside the ``huggingface`` features key.  Readers (a resumed run, ``inspect``, other
projects) decode them from the footer alone, without reading the data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

META_PREFIX = "emoprep."


def encode_metadata(meta: dict[str, Any]) -> dict[bytes, bytes]:
    """``emoprep.*`` keys with JSON values (plain strings stay strings)."""
    out = {}
    for key, value in meta.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out[(META_PREFIX + key).encode()] = text.encode()
    return out


def decode_metadata(raw: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The ``emoprep.*`` entries of a Parquet schema's metadata, keys without the prefix."""
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


def read_footer(path: Path) -> dict[str, Any] | None:
    """The emoprep metadata of a readable Parquet file at ``path`` and its row count
    (``_num_rows``), else None (absent or damaged)."""
    if not path.is_file():
        return None
    try:
        md = pq.read_metadata(path)
        meta = decode_metadata(pq.read_schema(path).metadata)
    except (OSError, pa.ArrowInvalid):
        return None
    meta["_num_rows"] = md.num_rows
    return meta
