"""Write a validated table to its final name in one step, and recognise a complete shard.

Every Parquet file of an output (shards, ``utterances.parquet``, ``failures.parquet``) is *staged*:
written whole to a local file, checked (its footer reads back with the row count written), hashed,
and only then moved to its final name in one step (:meth:`~emoprep.format.storage.Folder.upload`:
a rename in the same local folder, or one PUT to object storage).  So a reader or a resumed run sees
either the whole file or no file, on a disk as on S3, and the size and sha256 that the manifest
records are those of the bytes that were checked.  The file's Parquet key-value metadata
(:mod:`emoprep.format.footer`) records what produced it; :func:`is_complete` decides from the footer
alone whether a rerun may skip it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ...format.files import sha256_file
from ...format.footer import decode_metadata, encode_metadata, read_footer
from ...format.names import temporary_path
from ...format.schema import SCHEMA_VERSION
from ...format.storage import Folder

ROW_GROUP_ROWS = 16
"""Small row groups: shards hold megabytes of face crops and spectrograms per row, and readers that
want a few rows (a DataLoader over shards) should not have to decompress the whole file."""

EXIT_BEFORE_UPLOAD_ENV = "EMOPREP_TEST_EXIT_BEFORE_UPLOAD"
"""Test seam, not a feature: when this environment variable names a file being written, the process
ends (``os._exit``) after staging and checking it and before it is put in place — a worker killed at
the worst moment.  tests/storage uses it to show that a killed worker leaves nothing partial behind
and that the next run writes only what is missing.  Unset in every real run."""


@dataclass(frozen=True)
class Written:
    """What was put in place: the size and sha256 of the checked bytes (the manifest records them)."""

    bytes: int
    sha256: str


class StagedFileError(RuntimeError):
    """A staged file did not read back as written; it is never put in place."""


def _staging_path(folder: Folder, name: str) -> tuple[Path, Path | None]:
    """Where ``name`` is written before it is put in place, and the temporary folder to remove after.

    Local: a hidden name in the output folder itself, so that putting it in place is one rename.
    Object storage: a private temporary folder on this machine (the worker's), from which it is
    uploaded."""
    if folder.local is not None:
        return temporary_path(folder.local / name), None
    scratch = Path(tempfile.mkdtemp(prefix="emoprep-stage-"))
    return scratch / name, scratch


def _check_staged(path: Path, rows: int) -> Written:
    meta = read_footer(path)
    if meta is None or meta["_num_rows"] != rows:
        found = "no readable footer" if meta is None else f"{meta['_num_rows']} rows"
        raise StagedFileError(f"{path.name}: staged file does not read back ({found}; {rows} rows written)")
    return Written(path.stat().st_size, sha256_file(path))


def _exit_if_asked(name: str) -> None:
    """See :data:`EXIT_BEFORE_UPLOAD_ENV`."""
    if os.environ.get(EXIT_BEFORE_UPLOAD_ENV) == name:
        os._exit(70)


def write_table(table: pa.Table, folder: Folder, name: str, meta: dict[str, Any]) -> Written:
    """Write ``table`` with ``meta`` as ``name`` in ``folder``: staged, checked, then put in place once.

    ``meta`` is added to the table's own schema metadata, not put in its place: a shard's table
    carries the ``huggingface`` features key from :func:`emoprep.format.schema.utterance_schema`, which
    HuggingFace ``datasets`` needs to decode the face crops."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **encode_metadata(meta)})
    staging, scratch = _staging_path(folder, name)
    try:
        pq.write_table(table, staging, compression="zstd", row_group_size=ROW_GROUP_ROWS, write_statistics=True)
        with open(staging, "rb+") as f:
            os.fsync(f.fileno())
        written = _check_staged(staging, table.num_rows)
        _exit_if_asked(name)
        folder.upload(staging, name, sha256=written.sha256)
        return written
    finally:
        staging.unlink(missing_ok=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def footer_in(folder: Folder, name: str) -> dict[str, Any] | None:
    """:func:`~emoprep.format.footer.read_footer` of file ``name`` in ``folder``, local or remote.

    On object storage only the footer is fetched (pyarrow reads the file's tail through
    :meth:`Folder.arrow`), never the whole shard."""
    if folder.local is not None:
        return read_footer(folder.local / name)
    fs, base = folder.arrow()
    try:
        parquet = pq.ParquetFile(f"{base}/{name}", filesystem=fs)
    except (OSError, pa.ArrowInvalid):
        return None  # absent (FileNotFoundError is an OSError) or not a whole Parquet file
    meta = decode_metadata(parquet.schema_arrow.metadata)
    meta["_num_rows"] = parquet.metadata.num_rows
    return meta


def is_complete(meta: dict[str, Any] | None, config_hash: str, ids_sha256: str, rows: int) -> bool:
    """Whether a shard in the output (its :func:`footer_in`) was written by this configuration for
    exactly these utterances."""
    if meta is None:
        return False
    shard = meta.get("shard") or {}
    return (
        str(meta.get("schema_version")) == str(SCHEMA_VERSION)
        and meta.get("config_hash") == config_hash
        and shard.get("ids_sha256") == ids_sha256
        and meta.get("_num_rows") == rows
    )
