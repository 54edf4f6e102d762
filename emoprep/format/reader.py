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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .manifest import Manifest, folder_of, read_manifest
from .names import SPLITS
from .schema import utterance_schema


def shard_paths(path: str | Path, split: str | None = None) -> list[Path]:
    """Shard files listed by the manifest of ``path``, optionally of one split."""
    root = folder_of(path)
    return [root / s.file for s in read_manifest(root).shards_of(split)]


def read_shards(path: str | Path, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """All rows of a finished run (or of one split) as one table, in shard order."""
    files = shard_paths(path, split)
    if not files:
        schema = utterance_schema()
        return schema.empty_table().select(columns) if columns else schema.empty_table()
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files)


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a shard: the unit that streaming readers divide among workers."""

    path: Path
    index: int
    rows: int
    split: str


def row_groups(path: str | Path, split: str | None = None) -> list[RowGroup]:
    """Every row group of a finished run (or of one split), in shard order; reads footers only."""
    root = folder_of(path)
    return [group for shard in read_manifest(root).shards_of(split) for group in shard_row_groups(root / shard.file, shard.split)]


def shard_row_groups(path: Path, split: str) -> list[RowGroup]:
    """The row groups of one shard file (its footer only)."""
    meta = pq.read_metadata(path)
    return [RowGroup(path, i, meta.row_group(i).num_rows, split) for i in range(meta.num_row_groups)]


@lru_cache(maxsize=4)
def _open(path: Path, size: int, mtime_ns: int) -> pq.ParquetFile:
    """An open shard, reused across its row groups (the footer is parsed once); keyed by size and
    mtime so a rewritten file is reopened.  Few are kept: reading in order needs one, and every open
    file holds its footer, so a larger cache would make a streaming reader's memory grow with the
    number of shards."""
    return pq.ParquetFile(path)


def read_row_group(group: RowGroup, columns: list[str] | None = None) -> pa.Table:
    """The rows of one row group, only ``columns`` decoded."""
    st = group.path.stat()
    return _open(group.path, st.st_size, st.st_mtime_ns).read_row_group(group.index, columns=columns)


def iter_shards(
    path: str | Path,
    split: str | None = None,
    columns: list[str] | None = None,
    batch_rows: int = 256,
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
    manifest = read_manifest(path)  # first: an unfinished folder says so, whatever the other arguments
    if split is not None and split not in SPLITS:
        present = sorted({s.split for s in manifest.shards})
        raise ValueError(f"unknown split {split!r}: splits are {list(SPLITS)} (this folder has {present})")
    if columns is not None:
        known = _column_names(folder_of(path), manifest)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; the shards have {known}")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    groups = row_groups(path, split)
    return _batches(groups, columns, batch_rows)


def shard_schema(root: Path, manifest: Manifest) -> pa.Schema:
    """The shards' Arrow schema: one footer's (every shard is validated against the same published
    schema), or the published schema for a run without shards."""
    if manifest.shards:
        return pq.read_schema(root / manifest.shards[0].file)
    return utterance_schema()


def _column_names(root: Path, manifest: Manifest) -> list[str]:
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
