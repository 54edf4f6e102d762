"""How long ``emoprep report`` takes on a shard folder as the folder grows to MOSEI's size.

A real shard folder (``--shards``, e.g. the 60-video demo) is rewritten into shards of
``--rows-per-shard`` rows (emoprep's default 64, as a MOSEI run writes; the demo writes 8), then
replicated ``k`` times by hard links (no disk space used) under a manifest listing every copy, so the rows are real rows (face crops,
log-mel, 142-dim windows) and a 100-fold folder holds as many utterances as MOSEI (22,500 for the
225-row demo).  For each ``k`` the report is rendered in a fresh process, timed in total and split
into the exact pass over the light columns (every row) and the rest (a fixed sample of row groups
and the figures).  The baseline is ``k = 1`` in the same run: ``seconds_over_k1`` should stay far
below ``k`` because only the light columns grow with the folder.

Run: ``python benchmarks/bench_report.py --shards shards/demo60 [--copies 1,10,100]
[--rows-per-shard 64] [--out benchmarks/results]``.  Writes ``report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from pathlib import Path
from emoprep.report.shard_folder import LIGHT_COLUMNS, shard_folder_report
from emoprep.format.reader import read_shards
root, out = Path(sys.argv[1]), Path(sys.argv[2])
t = time.perf_counter(); light = read_shards(root, columns=LIGHT_COLUMNS); light_s = time.perf_counter() - t
t = time.perf_counter(); shard_folder_report(root, out); total = time.perf_counter() - t
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"rows": light.num_rows, "seconds": total, "light_columns_seconds": light_s,
                  "html_mb": out.stat().st_size / 1e6, "peak_rss_mb": peak}))
"""


def reshard(src: Path, dst: Path, rows_per_shard: int) -> Path:
    """``src``'s rows rewritten into shards of ``rows_per_shard`` rows (16-row groups, as emoprep
    writes them), so the file count per row is that of a real run with that ``shard_size``."""
    import pyarrow.parquet as pq

    from emoprep.format.reader import shard_paths
    from emoprep.extraction.engine.writer import ROW_GROUP_ROWS

    manifest = json.loads((src / "manifest.json").read_text())
    dst.mkdir(parents=True)
    shards = []
    for split in sorted({s["split"] for s in manifest["shards"]}):
        table = pq.ParquetDataset(shard_paths(src, split)).read()
        for i, start in enumerate(range(0, table.num_rows, rows_per_shard)):
            part = table.slice(start, rows_per_shard)
            name = f"{split}-{i:05d}.parquet"
            pq.write_table(part, dst / name, compression="zstd", row_group_size=ROW_GROUP_ROWS)
            shards.append({"file": name, "split": split, "rows": part.num_rows, "bytes": (dst / name).stat().st_size})
    (dst / "manifest.json").write_text(json.dumps({**manifest, "shards": shards}))
    return dst


def replicate(src: Path, dst: Path, copies: int) -> Path:
    """``dst``: ``copies`` hard-linked copies of every shard of ``src`` under one manifest."""
    manifest = json.loads((src / "manifest.json").read_text())
    dst.mkdir(parents=True)
    shards = []
    for c in range(copies):
        for s in manifest["shards"]:
            name = f"c{c:03d}-{s['file']}"
            os.link(src / s["file"], dst / name)
            shards.append({**s, "file": name})
    if (src / "failures.parquet").is_file():
        os.link(src / "failures.parquet", dst / "failures.parquet")
    counts = dict(manifest["counts"])
    counts["utterances"] = counts["utterances"] * copies
    counts["rows_per_split"] = {k: v * copies for k, v in counts["rows_per_split"].items()}
    counts["non_null_per_column"] = {k: v * copies for k, v in counts["non_null_per_column"].items()}
    (dst / "manifest.json").write_text(json.dumps({**manifest, "shards": shards, "counts": counts}))
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=Path, required=True, help="a finished shard folder to replicate")
    ap.add_argument("--copies", default="1,10,100")
    ap.add_argument("--rows-per-shard", type=int, default=64,
                    help="rewrite the source into shards of this many rows first (64: emoprep's default shard_size)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        source = reshard(args.shards, Path(tmp) / "source", args.rows_per_shard) if args.rows_per_shard else args.shards
        for k in (int(c) for c in args.copies.split(",")):
            folder = replicate(source, Path(tmp) / f"x{k}", k)
            done = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(Path(tmp) / f"x{k}.html")],
                                  check=True, capture_output=True, text=True)
            case = {"copies": k, **json.loads(done.stdout.strip().splitlines()[-1])}
            cases.append(case)
            print(json.dumps(case))
    base = cases[0]
    for c in cases:
        c["rows_over_k1"] = c["rows"] / base["rows"]
        c["seconds_over_k1"] = c["seconds"] / base["seconds"]
    result = {"shards": str(args.shards.name), "rows_per_shard": args.rows_per_shard, "cases": cases}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps([{k: c[k] for k in ("copies", "rows", "seconds", "seconds_over_k1", "peak_rss_mb")} for c in cases], indent=1))


if __name__ == "__main__":
    main()
