"""Reading shards back: the consumer API (``emoprep.read_shards``).

Plain pyarrow, pandas, polars, DuckDB or HuggingFace ``datasets`` read the files directly; this helper
only adds the manifest check (a folder without ``manifest.json`` is an unfinished run) and restores
nothing emoprep-specific: what it returns is a plain ``pyarrow.Table``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .manifest import read_manifest


def shard_paths(path: str | Path, split: str | None = None) -> list[Path]:
    """Shard files listed by the manifest of ``path``, optionally of one split."""
    root = Path(path)
    manifest = read_manifest(root)
    return [root / s["file"] for s in manifest["shards"] if split is None or s["split"] == split]


def read_shards(path: str | Path, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """All rows of a finished run (or of one split) as one table, in shard order."""
    files = shard_paths(path, split)
    if not files:
        from ..schema import utterance_schema

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
    root = Path(path)
    manifest = read_manifest(root)
    out = []
    for shard in manifest["shards"]:
        if split is not None and shard["split"] != split:
            continue
        meta = pq.read_metadata(root / shard["file"])
        out += [RowGroup(root / shard["file"], i, meta.row_group(i).num_rows, shard["split"]) for i in range(meta.num_row_groups)]
    return out


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
