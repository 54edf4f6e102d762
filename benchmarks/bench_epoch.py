"""How long does one training epoch take, FE2E against MESM, as a user runs them?

    python benchmarks/bench_epoch.py --shards shards/demo60 [--models fe2e,mesm] [--epochs 2]
                                     [--threads 1] [--repeats 2] [--set KEY=VALUE ...]

Runs ``emoprep train MODEL --shards S --set optim.batch_size=8 --set optim.epochs=E`` (plus any
``--set``) in fresh processes, the models alternating, ``--repeats`` times each, with the same torch
threads (``OMP_NUM_THREADS``), and reads each run's ``history.jsonl``: per epoch the wall seconds and
the process's CPU seconds (training, validation pass and checkpoint writes, as the trainer counts an
epoch).  The first epoch pays one-off costs (allocator warm-up, featuriser caches), so the figure is
the best later epoch when ``--epochs`` > 1.  With one thread the CPU seconds are the work itself and
do not move when other processes share the machine; wall seconds do.  ``summary`` gives each model's
time over the first model's.  Writes ``benchmarks/results/epoch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_run(model: str, shards: Path, epochs: int, threads: int, extra: list[str], out: Path) -> list[dict]:
    """The history of one fresh ``emoprep train`` run."""
    sets = ["optim.batch_size=8", f"optim.epochs={epochs}", "optim.patience=0", *extra]
    cmd = [sys.executable, "-m", "emoprep", "train", model, "--shards", str(shards), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=Path, required=True)
    ap.add_argument("--models", default="fe2e,mesm")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra trainer settings, for every model")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    models = args.models.split(",")
    runs: dict[str, list[list[dict]]] = {m: [] for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for m in models:
                runs[m].append(one_run(m, args.shards, args.epochs, args.threads, args.sets, Path(tmp) / f"{m}-{r}"))
                print(f"{m} run {r + 1}: " + ", ".join(f"{h['seconds']:.1f} s wall / {h['cpu_seconds']:.1f} s CPU"
                                                   for h in runs[m][-1]), file=sys.stderr)
    skip = 1 if args.epochs > 1 else 0  # the first epoch's one-off costs
    best = {m: {key: min(h[key] for history in runs[m] for h in history[skip:]) for key in ("seconds", "cpu_seconds")}
            for m in models}
    base = models[0]
    result = {
        "shards": str(args.shards), "threads": args.threads, "epochs": args.epochs, "repeats": args.repeats,
        "settings": ["optim.batch_size=8", *args.sets], "runs": runs, "best_epoch": best,
        "summary": {m: {f"{key}_over_{base}": round(best[m][key] / best[base][key], 3) for key in ("seconds", "cpu_seconds")}
                    for m in models[1:]},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "epoch.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"]), f"\nwrote {args.out / 'epoch.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
