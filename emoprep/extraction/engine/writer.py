"""Write a validated table to its final name atomically, and recognise a complete shard on disk.

A shard is written to a hidden temporary name in the output folder and renamed into place, so a
reader (or a resumed run) sees either the whole file or no file.  Its Parquet key-value metadata
(:mod:`emoprep.format.footer`) records what produced it; :func:`is_complete` decides from the footer
alone whether a rerun may skip it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ...format.footer import encode_metadata
from ...format.names import temporary_path
from ...format.schema import SCHEMA_VERSION

ROW_GROUP_ROWS = 16
"""Small row groups: shards hold megabytes of face crops and spectrograms per row, and readers that
want a few rows (a DataLoader over shards) should not have to decompress the whole file."""


def write_atomic(table: pa.Table, path: Path, meta: dict[str, Any]) -> None:
    """Write ``table`` with ``meta`` to ``path`` via a temporary file and ``os.replace``.

    ``meta`` is added to the table's own schema metadata, not put in its place: a shard's table
    carries the ``huggingface`` features key from :func:`emoprep.format.schema.utterance_schema`, which
    HuggingFace ``datasets`` needs to decode the face crops."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **encode_metadata(meta)})
    tmp = temporary_path(path)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS, write_statistics=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def is_complete(meta: dict[str, Any] | None, config_hash: str, ids_sha256: str, rows: int) -> bool:
    """Whether a shard on disk (its :func:`~emoprep.format.footer.read_footer`) was written by this
    configuration for exactly these utterances."""
    if meta is None:
        return False
    shard = meta.get("shard") or {}
    return (
        str(meta.get("schema_version")) == str(SCHEMA_VERSION)
        and meta.get("config_hash") == config_hash
        and shard.get("ids_sha256") == ids_sha256
        and meta.get("_num_rows") == rows
    )
