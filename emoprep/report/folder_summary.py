"""``emoprep inspect``: what is in a shard folder, read from the manifest and Parquet footers only."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa

from ..console import console
from ..format.failures import read_failures
from ..format.manifest import Manifest, StorageOptions, read_manifest, shard_folder
from ..format.reader import shard_schema
from ..format.release_counts import describe_manifest_differences


def _shape(field: pa.Field) -> str:
    """``float[n x 300]`` for a list of 300-vectors: n varies per row, 300 is fixed by the schema."""
    t = field.type
    dims = []
    while hasattr(t, "value_type"):
        dims.append(str(t.list_size) if hasattr(t, "list_size") else "n")
        t = t.value_type
    return f"{t}[{' x '.join(dims)}]" if dims else str(t)


def inspect_output(path: str | Path, storage_options: StorageOptions = None) -> Manifest:
    """Print (and return) a summary of the finished run in ``path`` (a local folder or a URL)."""
    from rich.markup import escape
    from rich.table import Table

    root = shard_folder(path, storage_options)
    manifest = read_manifest(root)
    c = console()
    c.print(f"[bold]{manifest.dataset}[/]  schema v{manifest.schema_version}  emoprep {manifest.emoprep_version}"
            f"  config {manifest.config_hash}  created {manifest.created}")
    counts = Counter()
    for s in manifest.shards:
        counts[s.split] += s.rows
    c.print(f"rows: {sum(counts.values())} in {len(manifest.shards)} shard(s), {manifest.total_bytes / 1e6:.1f} MB  "
            + "  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    counts_line = describe_manifest_differences(manifest.counts.differences_from_full_release)
    if counts_line:
        c.print(f"[dim]counts: {escape(counts_line)}[/]")
    c.print(f"labels: {', '.join(manifest.label_names)}")

    if manifest.shards:
        # Types from one footer; non-null counts from the manifest (all shards, no data read).
        non_null = manifest.counts.non_null_per_column or {}
        total = sum(counts.values())
        cols = Table("column", "type / shape", "rows with a value")
        for field in shard_schema(root, manifest):
            n = non_null.get(field.name)
            cols.add_row(field.name, escape(_shape(field)), f"{n}/{total}" if n is not None else "?")
        c.print(cols)

    c.print("[bold]modalities / backends[/]")
    for name, desc in manifest.backends.items():
        c.print(f"  {name}: {json.dumps(desc, default=str)[:300]}")
    off = [m for m, on in manifest.modalities.items() if not on]
    if off:
        c.print(f"  disabled: {', '.join(off)} (their columns are null)")
    text = manifest.text
    if text.vectors_written:
        c.print(f"text: GloVe {text.glove}  OOV {text.oov_tokens}/{text.tokens} tokens = {text.oov_rate:.2%}")
    else:
        c.print("text: tokens only (no GloVe file was given; glove columns are null)")

    failures = read_failures(root, manifest.failures_file)
    if failures is not None and failures.num_rows:
        by_stage = Counter(zip(failures.column("stage").to_pylist(), failures.column("error_type").to_pylist()))
        c.print(f"[yellow]failures: {failures.num_rows} record(s)[/]")
        for (stage, err), n in by_stage.most_common():
            c.print(f"  {stage} / {err}: {n}")
    else:
        c.print("[green]failures: none[/]")
    return manifest
