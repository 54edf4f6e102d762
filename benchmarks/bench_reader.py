"""Benchmark the memory of reading a whole split: ``emoprep.iter_shards`` (streaming) against
``emoprep.read_shards`` (one table, the baseline), over shard folders of growing size.

The folders are one synthetic shard (:func:`emoprep.testing.shards.build_shard_folder` with GloVe
vectors, 48x48 PNG face crops, log-mel chunks, AUs and face-mesh landmarks, so rows weigh what real
ones do per position) listed N times in a manifest under N names: hard links where the file system
allows (else copies), so a 64-shard folder costs one shard of disk while each reader opens, decodes
and holds N files' rows.  Per folder size (``--shards 4,16,64``) and reader, ``--repeats`` fresh
processes each (the two readers interleaved; medians reported, every run kept under ``runs``):

* ``peak_rss_mb``: the process's peak RSS while reading the whole training split, all columns
  (``VmHWM`` reset after the imports and a one-row-group warm-up; ``ru_maxrss`` is recorded but not
  used: Linux carries the parent's high-water mark into a child, see ``bench_train.py``);
* ``growth_mb``: that peak over the RSS after the warm-up, i.e. what reading the split cost;
* ``arrow_peak_mb``: the peak of pyarrow's memory pool (since start; the warm-up's row group is
  small): the Arrow buffers alone, without the allocator's and decoder's overhead in the RSS;
* ``seconds``, ``rows``; for ``read_shards`` also ``table_mb`` (the table's Arrow buffers).

The streaming reader iterates with ``batch_rows`` (``--batch-rows 256``) and drops each batch, as a
consumer that processes and forgets does; its Arrow peak is about two batches (the row groups that
wait for the next batch, and the batch's contiguous copy).  ``summary`` gives, per size, both
readers' figures and ``read_shards_over_iter_shards`` (the baseline's cost as a multiple of
streaming's).

Run: ``python benchmarks/bench_reader.py [--shards 4,16,64] [--rows-per-shard 64] [--batch-rows 256]
[--repeats 3] [--quick] [--out benchmarks/results]``; about a minute and a half on 2 cores.
``--quick`` reads 2, 4 and 8 shards once each.  Writes ``reader.json`` (``reader-quick.json`` with
``--quick``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import pyarrow

from emoprep import read_manifest
from emoprep.format.manifest import Manifest, write_manifest
from emoprep.format.names import shard_name
from emoprep.testing.shards import build_shard_folder

CHILD = r"""
import gc, json, resource, sys, time
from pathlib import Path
import pyarrow as pa
import emoprep
from emoprep.format.reader import read_row_group, row_groups

mode, folder, batch_rows = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")

gc.collect()
cold = status("VmRSS")
# Warm-up, the same for both readers: one row group decoded (all columns) and dropped, so the first
# decode's code loading and allocator pools are not counted as the split's cost.
warm = read_row_group(row_groups(folder, "train")[0])
del warm
gc.collect()
base = status("VmRSS")
try:
    open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM: the peak from here on
    method = "VmHWM reset after imports and warm-up"
except OSError:
    method = "ru_maxrss (includes imports)"
t = time.perf_counter()
rows, extra = 0, {}
if mode == "read_shards":
    table = emoprep.read_shards(folder, split="train")
    rows = table.num_rows
    extra["table_mb"] = table.nbytes / 2**20
else:
    batches = 0
    for batch in emoprep.iter_shards(folder, split="train", batch_rows=batch_rows):
        rows += batch.num_rows
        batches += 1
        del batch
    extra["batches"] = batches
seconds = time.perf_counter() - t
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peak = status("VmHWM") if method.startswith("VmHWM") else maxrss
arrow_peak = pa.default_memory_pool().max_memory()
print(json.dumps({"rows": rows, "seconds": seconds, "rss_after_imports_mb": cold, "baseline_rss_mb": base,
                  "peak_rss_mb": peak, "growth_mb": peak - base, "ru_maxrss_mb": maxrss, "method": method,
                  "arrow_peak_mb": arrow_peak / 2**20 if arrow_peak is not None else None, **extra}))
"""

READERS = ("read_shards", "iter_shards")
MEDIAN_KEYS = ("peak_rss_mb", "growth_mb", "arrow_peak_mb", "seconds")
SUMMARY_KEYS = ("peak_rss_mb", "growth_mb", "arrow_peak_mb")


def measure(mode: str, folder: Path, batch_rows: int) -> dict:
    """One reader over one folder, in a fresh interpreter (one process's allocator, no leftovers)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), str(batch_rows)],
                         check=False, capture_output=True, text=True, env=env, cwd=REPO)
    if run.returncode:
        raise RuntimeError(f"child ({mode}, {folder}) failed:\n{run.stderr}")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}


def source_shard(tmp: Path, rows: int) -> tuple[Path, Manifest]:
    """One heavy synthetic training shard of ``rows`` rows, and its manifest."""
    folder = build_shard_folder(tmp / "source", {"train": rows, "valid": 1, "test": 1}, shard_size=rows,
                                glove=True, crops=True, logmel=True, aus=True)
    manifest = read_manifest(folder)
    return folder / manifest.shards_of("train")[0].file, manifest


def replicated_folder(tmp: Path, shard: Path, manifest: Manifest, n: int) -> Path:
    """A finished folder whose training split is ``n`` copies of ``shard`` (hard links if possible)."""
    folder = tmp / f"shards-{n}"
    folder.mkdir()
    entry = manifest.shards_of("train")[0]
    listed = []
    for i in range(n):
        name = shard_name("train", i, n)
        try:
            os.link(shard, folder / name)
        except OSError:
            shutil.copyfile(shard, folder / name)
        listed.append(dataclasses.replace(entry, file=name))
    rows = entry.rows * n
    counts = dataclasses.replace(manifest.counts, utterances=rows, rows_per_split={"train": rows})
    write_manifest(folder, dataclasses.replace(manifest, shards=tuple(listed), counts=counts))
    return folder


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "pyarrow": pyarrow.__version__,
        "numpy": np.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", default="4,16,64", help="folder sizes: training shards per folder")
    ap.add_argument("--rows-per-shard", type=int, default=64, help="rows of the replicated shard")
    ap.add_argument("--batch-rows", type=int, default=256, help="iter_shards batch size")
    ap.add_argument("--repeats", type=int, default=3,
                    help="fresh processes per reader and size (medians reported)")
    ap.add_argument("--quick", action="store_true", help="folders of 2, 4 and 8 shards, one run each")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    sizes = [2, 4, 8] if args.quick else sorted(int(n) for n in args.shards.split(","))
    if args.quick:
        args.repeats = 1
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict = {"machine": machine(), "quick": args.quick, "batch_rows": args.batch_rows,
                    "repeats": args.repeats, "baseline": "read_shards", "cases": []}

    with tempfile.TemporaryDirectory(prefix="bench_reader-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        shard, manifest = source_shard(tmp, args.rows_per_shard)
        non_null = manifest.counts.non_null_per_column or {}
        result["shard"] = {"rows": args.rows_per_shard, "bytes": shard.stat().st_size,
                           "build_s": round(time.perf_counter() - t, 2),
                           "columns_with_values": sorted(k for k, v in non_null.items() if v)}
        for n in sizes:
            folder = replicated_folder(tmp, shard, manifest, n)
            case: dict = {"shards": n, "rows": n * args.rows_per_shard,
                          "bytes_listed": n * shard.stat().st_size}
            runs: dict[str, list[dict]] = {m: [] for m in READERS}
            for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits both readers
                for mode in READERS:
                    r = measure(mode, folder, args.batch_rows)
                    if r["rows"] != case["rows"]:
                        raise RuntimeError(f"{mode} read {r['rows']} rows of {case['rows']}")
                    runs[mode].append(r)
            for mode in READERS:
                case[mode] = {key: median([r[key] for r in runs[mode]]) for key in MEDIAN_KEYS}
                case[mode]["runs"] = runs[mode]
                print(f"{n:3d} shards {mode:12s} peak {case[mode]['peak_rss_mb']:8.1f} MB  growth "
                      f"{case[mode]['growth_mb']:8.1f} MB  arrow {case[mode]['arrow_peak_mb']:7.1f} MB  "
                      f"{case[mode]['seconds']:.2f} s", file=sys.stderr)
            result["cases"].append(case)
            shutil.rmtree(folder)

    result["summary"] = {
        str(c["shards"]): {
            "rows": c["rows"],
            **{key: {m: c[m][key] for m in READERS} for key in SUMMARY_KEYS},
            "read_shards_over_iter_shards": {
                key: round(c["read_shards"][key] / max(c["iter_shards"][key], 0.01), 2)
                for key in SUMMARY_KEYS
            },
        }
        for c in result["cases"]
    }
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    path = args.out / ("reader-quick.json" if args.quick else "reader.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"written: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
