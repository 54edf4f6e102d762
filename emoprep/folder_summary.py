"""``emoprep inspect``: what is in a shard folder, read from the manifest and Parquet footers only."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from .console import console
from .release_counts import describe_manifest_differences
from .shards.manifest import FAILURES, read_manifest


def _shape(field) -> str:  # noqa: ANN001 - pyarrow field
    """``float[n x 300]`` for a list of 300-vectors: n varies per row, 300 is fixed by the schema."""
    t = field.type
    dims = []
    while hasattr(t, "value_type"):
        dims.append(str(t.list_size) if hasattr(t, "list_size") else "n")
        t = t.value_type
    return f"{t}[{' x '.join(dims)}]" if dims else str(t)


def inspect_output(path: Path) -> dict:
    """Print (and return) a summary of the finished run in ``path``."""
    from rich.markup import escape
    from rich.table import Table

    manifest = read_manifest(path)
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    c = console()
    c.print(f"[bold]{manifest['dataset']}[/]  schema v{manifest['schema_version']}  emoprep {manifest['emoprep_version']}"
            f"  config {manifest['config_hash']}  created {manifest['created']}")
    counts = Counter()
    for s in manifest["shards"]:
        counts[s["split"]] += s["rows"]
    total_bytes = sum(s["bytes"] for s in manifest["shards"])
    c.print(f"rows: {sum(counts.values())} in {len(manifest['shards'])} shard(s), {total_bytes / 1e6:.1f} MB  "
            + "  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    counts_line = describe_manifest_differences(manifest["counts"].get("differences_from_full_release"))
    if counts_line:
        c.print(f"[dim]counts: {escape(counts_line)}[/]")
    c.print(f"labels: {', '.join(manifest['label_names'])}")

    if manifest["shards"]:
        # Types from one footer; non-null counts from the manifest (all shards, no data read).
        schema = pq.read_schema(root / manifest["shards"][0]["file"])
        non_null = manifest["counts"].get("non_null_per_column", {})
        total = sum(counts.values())
        cols = Table("column", "type / shape", "rows with a value")
        for field in schema:
            n = non_null.get(field.name)
            cols.add_row(field.name, escape(_shape(field)), f"{n}/{total}" if n is not None else "?")
        c.print(cols)

    c.print("[bold]modalities / backends[/]")
    for name, desc in manifest.get("backends", {}).items():
        c.print(f"  {name}: {json.dumps(desc, default=str)[:300]}")
    off = [m for m, on in manifest.get("modalities", {}).items() if not on]
    if off:
        c.print(f"  disabled: {', '.join(off)} (their columns are null)")
    text = manifest.get("text", {})
    if text.get("vectors_written"):
        c.print(f"text: GloVe {text['glove']}  OOV {text['oov_tokens']}/{text['tokens']} tokens = {text['oov_rate']:.2%}")
    else:
        c.print("text: tokens only (no GloVe file was given; glove columns are null)")

    failures = pq.read_table(root / FAILURES) if (root / FAILURES).is_file() else None
    if failures is not None and failures.num_rows:
        by_stage = Counter(zip(failures.column("stage").to_pylist(), failures.column("error_type").to_pylist()))
        c.print(f"[yellow]failures: {failures.num_rows} record(s)[/]")
        for (stage, err), n in by_stage.most_common():
            c.print(f"  {stage} / {err}: {n}")
    else:
        c.print("[green]failures: none[/]")
    return manifest
