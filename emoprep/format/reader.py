"""Reading shards back: the consumer API (``emoprep.read_shards``, ``emoprep.iter_shards``).

Plain pyarrow, pandas, polars, DuckDB or HuggingFace ``datasets`` read the files directly; these
helpers only add the manifest check (a folder without ``manifest.json`` is an unfinished run) and
restore nothing emoprep-specific: they return plain pyarrow tables and record batches.

``read_shards`` loads a whole split into one table.  A split that does not fit in memory is read
with ``iter_shards``, which decodes one row group (16 rows) at a time and yields record batches, so
it holds about two batches of the chosen columns whatever the split's size (the rows waiting for
the next batch and the batch's contiguous copy; ``benchmarks/bench_reader.py`` measures it)::

    import emoprep

    for batch in emoprep.iter_shards("shards/mosei", split="train", columns=["utterance_id", "acoustic"],
                                     batch_rows=256):
        ids = batch.column("utterance_id")            # a pyarrow.RecordBatch of <= 256 rows

Every reader takes a local path or an fsspec URL (``s3://bucket/prefix``) with ``storage_options=``
(credentials, endpoint): a URL is read through pyarrow over the fsspec filesystem, footers and row
groups with ranged requests, so streaming a split from object storage downloads only the chosen
columns' pages, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .manifest import Manifest, StorageOptions, read_manifest, shard_folder
from .names import SPLITS
from .schema import utterance_schema
from .storage import Folder, is_url


def shard_paths(path: str | Path, split: str | None = None, *, storage_options: StorageOptions = None) -> list[Path | str]:
    """Shard files listed by the manifest of ``path``, optionally of one split (URLs for a URL)."""
    root = shard_folder(path, storage_options)
    return [shard_location(root, s.file) for s in read_manifest(root).shards_of(split)]


def shard_location(root: Folder, name: str) -> Path | str:
    """File ``name`` of ``root``: a local path, or its URL (which carries no credential)."""
    return root.local / name if root.local is not None else f"{root.location}/{name}"


def read_shards(path: str | Path, split: str | None = None, columns: list[str] | None = None, *,
                storage_options: StorageOptions = None) -> pa.Table:
    """All rows of a finished run (or of one split) as one table, in shard order.  ``path`` may be a
    URL (``s3://bucket/prefix``), with ``storage_options`` for its store."""
    root = shard_folder(path, storage_options)
    files = [s.file for s in read_manifest(root).shards_of(split)]
    if not files:
        schema = utterance_schema()
        return schema.empty_table().select(columns) if columns else schema.empty_table()
    fs, base = root.arrow()
    return pa.concat_tables(pq.read_table(f"{base}/{f}", columns=columns, filesystem=fs) for f in files)


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a shard: the unit that streaming readers divide among workers.

    ``path`` is a local path or a URL; a URL's ``storage_options`` travel with the group (to loader
    workers) and are kept out of its ``repr``.  ``sha256``: the shard's, as its manifest lists it;
    an object replaced by a later run has another, so a reader never reads it through the footer
    of the object it replaced (:func:`_open`)."""

    path: Path | str
    index: int
    rows: int
    split: str
    storage_options: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    sha256: str | None = field(default=None, repr=False, compare=False)


def row_groups(path: str | Path, split: str | None = None, *, storage_options: StorageOptions = None) -> list[RowGroup]:
    """Every row group of a finished run (or of one split), in shard order; reads footers only."""
    root = shard_folder(path, storage_options)
    return [group for shard in read_manifest(root).shards_of(split)
            for group in shard_row_groups(shard_location(root, shard.file), shard.split, storage_options=root.options,
                                          sha256=shard.sha256)]


def shard_row_groups(path: Path | str, split: str, *, storage_options: StorageOptions = None,
                     sha256: str | None = None) -> list[RowGroup]:
    """The row groups of one shard file (its footer only; a local path or a URL, ``sha256`` its
    manifest's)."""
    if not is_url(path):
        meta = pq.read_metadata(path)
        return [RowGroup(path, i, meta.row_group(i).num_rows, split) for i in range(meta.num_row_groups)]
    options = dict(storage_options or {})
    meta = _open(str(path), (sha256 or "",), _options_key(options)).metadata
    return [RowGroup(path, i, meta.row_group(i).num_rows, split, options, sha256) for i in range(meta.num_row_groups)]


def _options_key(options: StorageOptions) -> str:
    """Storage options as a hashable cache key (never shown)."""
    return json.dumps(options or {}, sort_keys=True, default=str)


@lru_cache(maxsize=4)
def _open(path: Path | str, stamp: tuple[int | str, ...], options_key: str = "{}") -> pq.ParquetFile:
    """An open shard, reused across its row groups (the footer is parsed once).  ``stamp`` tells
    versions of one path apart, so that a rewritten file is reopened: a local file's size and mtime,
    an object's sha256 from the manifest that listed it (an object of a finished folder is replaced
    only by a new run, which lists it with its new sha256).  Few are kept: reading in order needs one, and every open
    file holds its footer, so a larger cache would make a streaming reader's memory grow with the
    number of shards."""
    if not is_url(path):
        return pq.ParquetFile(path)
    folder, name = str(path).rsplit("/", 1)
    fs, base = Folder.of(folder, json.loads(options_key)).arrow()
    return pq.ParquetFile(f"{base}/{name}", filesystem=fs)


def read_row_group(group: RowGroup, columns: list[str] | None = None) -> pa.Table:
    """The rows of one row group, only ``columns`` decoded."""
    if is_url(group.path):
        shard = _open(str(group.path), (group.sha256 or "",), _options_key(group.storage_options))
    else:
        st = Path(group.path).stat()
        shard = _open(group.path, (st.st_size, st.st_mtime_ns))
    return shard.read_row_group(group.index, columns=columns)


def iter_shards(
    path: str | Path,
    split: str | None = None,
    columns: list[str] | None = None,
    batch_rows: int = 256,
    *,
    storage_options: StorageOptions = None,
) -> Iterator[pa.RecordBatch]:
    """The rows of a finished run (or of one split) as record batches of ``batch_rows`` rows (the
    last one shorter), in the same order as :func:`read_shards`, decoding only ``columns``.

    For splits that do not fit in memory: row groups are read one at a time and a batch may span
    row groups and shards (so batches have the same size however the run was sharded), and memory
    holds about two batches of the chosen columns (and the footers of the few files :func:`_open`
    keeps), not the split.  The arguments are checked here, before the first batch: a folder without
    ``manifest.json`` raises ``FileNotFoundError`` (an unfinished run, as for :func:`read_shards`);
    a split outside the schema's, a column outside the shards' or ``batch_rows < 1`` raises
    ``ValueError`` naming what is allowed.
    """
    root = shard_folder(path, storage_options)
    manifest = read_manifest(root)  # first: an unfinished folder says so, whatever the other arguments
    if split is not None and split not in SPLITS:
        present = sorted({s.split for s in manifest.shards})
        raise ValueError(f"unknown split {split!r}: splits are {list(SPLITS)} (this folder has {present})")
    if columns is not None:
        known = _column_names(root, manifest)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; the shards have {known}")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    groups = row_groups(root, split)
    return _batches(groups, columns, batch_rows)


def shard_schema(root: Path | Folder, manifest: Manifest) -> pa.Schema:
    """The shards' Arrow schema: one footer's (every shard is validated against the same published
    schema), or the published schema for a run without shards."""
    if manifest.shards:
        fs, base = Folder.of(root).arrow()
        return pq.read_schema(f"{base}/{manifest.shards[0].file}", filesystem=fs)
    return utterance_schema()


def _column_names(root: Folder, manifest: Manifest) -> list[str]:
    return shard_schema(root, manifest).names


def _batches(groups: list[RowGroup], columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Re-cut row groups into batches of ``batch_rows``.  The rows waiting for the next batch are
    zero-copy slices (at most one batch and one row group); each batch is cut off them *before* it is
    yielded and dropped after, so while the consumer works on a batch only the remainder (less than
    one row group) is held besides it."""
    pending: pa.Table | None = None
    for group in groups:
        table = read_row_group(group, columns)
        pending = table if pending is None else pa.concat_tables([pending, table])
        del table
        while pending.num_rows >= batch_rows:
            batch = _contiguous(pending.slice(0, batch_rows))
            pending = pending.slice(batch_rows)
            yield batch
            del batch
    if pending is not None and pending.num_rows:
        yield _contiguous(pending)


def _contiguous(table: pa.Table) -> pa.RecordBatch:
    """One record batch of ``table``'s rows (a copy when they span row groups)."""
    return table.combine_chunks().to_batches()[0]
