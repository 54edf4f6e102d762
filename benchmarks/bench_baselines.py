"""Do the baselines learn?  Each model over several seeds, against the all-positive predictor and
against the same model trained on shuffled training labels, on one shard folder (e.g. the larger demo).

    python benchmarks/bench_baselines.py --shards shards/demo60 [--models lf-lstm,mult] [--seeds 0,1,2]

Shuffled labels: a copy of the folder whose training rows' ``emotions`` are permuted across the
training split (validation and test keep their true labels), so a model that scores above it learned
from the features, not from label frequencies.  Writes ``benchmarks/results/baselines.json`` with
every run's test average F1 and WAcc/Acc, and per model the mean and standard deviation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS = Path(__file__).resolve().parent / "results"


def shuffled_copy(src: Path, dst: Path, seed: int = 0) -> Path:
    """``src`` with the training split's labels permuted across its rows."""
    from emoprep.format.reader import shard_paths

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    files = shard_paths(dst, "train")
    tables = [pq.read_table(f) for f in files]
    labels = pa.concat_arrays([t.column("emotions").combine_chunks() for t in tables])
    perm = np.random.default_rng(seed).permutation(len(labels))
    permuted = labels.take(pa.array(perm))
    start = 0
    for f, t in zip(files, tables):
        column = permuted.slice(start, t.num_rows)
        start += t.num_rows
        t = t.set_column(t.schema.get_field_index("emotions"), t.schema.field("emotions"), column)
        pq.write_table(t, f, compression="zstd", row_group_size=16)
    return dst


def one_run(job: tuple[str, str, int, str, list[str]]) -> dict:
    import torch

    torch.set_num_threads(1)
    from emoprep.train.config import parse_sets
    from emoprep.train.run import train

    model, shards, seed, out, sets = job
    t0 = time.perf_counter()
    result = train(model, Path(shards), Path(out), sets=parse_sets(sets), seed=seed, device="cpu", quiet=True)
    head = "wacc" if result["task"] == "multilabel" else "acc"
    return {"model": model, "shards": shards, "seed": seed, "test_f1": result["test"]["average"]["f1"],
            f"test_{head}": result["test"]["average"][head], "all_positive_f1": result["test"]["all_positive"]["f1"],
            "chosen_epoch": result["chosen_epoch"], "epochs_run": result["epochs_run"], "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=Path, required=True)
    ap.add_argument("--models", default="lf-lstm,lf-trans,mult,emoembs")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra --set for every run")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/emoprep-bench-baselines"))
    args = ap.parse_args()

    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    shuffled = shuffled_copy(args.shards, args.work / "shuffled-labels")
    jobs = []
    for model in args.models.split(","):
        for seed in map(int, args.seeds.split(",")):
            for kind, folder in (("true", args.shards), ("shuffled", shuffled)):
                jobs.append((model, str(folder), seed, str(args.work / f"{model}-{kind}-{seed}"), args.sets))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(one_run, jobs))
    for run in runs:
        run["labels"] = "shuffled" if run["shards"] == str(shuffled) else "true"
    summary = {}
    for model in args.models.split(","):
        entry = {}
        for kind in ("true", "shuffled"):
            f1 = [r["test_f1"] for r in runs if r["model"] == model and r["labels"] == kind]
            entry[kind] = {"f1_mean": statistics.mean(f1), "f1_std": statistics.stdev(f1) if len(f1) > 1 else 0.0, "f1": f1}
        entry["all_positive_f1"] = next(r["all_positive_f1"] for r in runs if r["model"] == model)
        summary[model] = entry
    out = {"shards": str(args.shards), "seeds": args.seeds, "extra_sets": args.sets, "seconds": time.perf_counter() - t0,
           "summary": summary, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "baselines.json"
    path.write_text(json.dumps(out, indent=2))
    for model, e in summary.items():
        print(f"{model:9s} test avg F1 {e['true']['f1_mean']:.3f} ± {e['true']['f1_std']:.3f}   shuffled labels "
              f"{e['shuffled']['f1_mean']:.3f} ± {e['shuffled']['f1_std']:.3f}   all-positive {e['all_positive_f1']:.3f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
