"""FE2E and MESM against the authors' architecture choices: test average F1 over seeds, before and after.

    python benchmarks/bench_paper_settings.py --shards shards/demo60 [--seeds 0,1,2] [--jobs 2]
        [--set settings.cnn_width=0.25 --set optim.epochs=8 ...] [--variants all] [--before e7b0523]

Three kinds of runs, all on one shard folder (e.g. the larger demo), each model at each seed:

* ``before``: the code of git revision ``--before`` (default e7b0523: pre-LN transformers with a final
  norm, dropout before every head, softmax-normalised fusion, ALBERT's pooled output, gradient clipping
  at 2), extracted with ``git archive REV | tar -x`` into the work folder and run with
  ``PYTHONPATH`` set to it;
* ``after``: the working tree (defaults: the authors' choices; README, "FE2E and MESM against the
  authors' code");
* with ``--variants``: the working tree with one choice switched back to emoprep's earlier one
  (``settings.norm=pre``, ...; see :data:`VARIANTS`), plus ``all_emoprep`` (every one of them at once:
  the before architecture on today's code, but for the CLS token's initial scale, now N(0, 1), was
  0.02 N(0, 1); so after - all_emoprep isolates this change from the rest of the commits since
  ``--before``).  ``--variants all`` or a comma list of names.

Every run is a separate ``python`` process (``PYTHONPATH`` picks the revision; one torch thread
each); ``--jobs`` of them run at a time.  ``--set`` overrides apply to every run of both revisions
and are recorded; the defaults (:data:`DEFAULT_SETS`) shrink the CNNs and the epochs so that the
whole comparison fits a CPU (full-size FE2E takes about 2 minutes an epoch on a 2-core machine).
Writes ``benchmarks/results/paper_settings.json`` (``--out``): per run the test average F1 and
WAcc/Acc, the chosen epoch, epochs run and seconds, the emoprep folder the run imported; per model
and revision (or variant) the mean and standard deviation of test F1 and WAcc/Acc.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_SETS = ["settings.cnn_width=0.25", "optim.epochs=8", "optim.patience=3"]
"""Quarter-width CNNs (1/16 of the convolution FLOPs), at most 8 epochs, early stop after 3."""
VARIANTS = {
    "norm=pre": ["settings.norm=pre"],
    "positions=none": ["settings.positions=none"],
    "input_dropout": ["settings.input_dropout=true"],
    "head_dropout": ["settings.head_dropout=true"],
    "fusion=softmax": ["settings.fusion=softmax"],
    "grad_clip=2": ["optim.grad_clip=2.0"],
    "text_summary=pooler": ["settings.text_summary=pooler"],
    "sparse_impl=masked": ["settings.sparse_impl=masked"],
}
"""One deviation from the authors each, on the working tree.  ``positions=none`` goes the other way
(emoprep keeps sinusoidal positions; this is the authors' bag of frames).  ``text_summary`` only
matters with ALBERT (``--set settings.text_encoder=albert --set settings.albert_path=DIR``) and is
skipped otherwise.  ``sparse_impl=masked`` is MESM's only (the masked dense reference of its sparse
stages, against the default gather path on the CPU: the same model, so F1 must agree)."""
ONLY_FOR = {"sparse_impl=masked": ("mesm",)}
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
"""Every run's environment: one thread, and a fixed hash seed (the working tree's training was seen to
depend on it: same seed, different numbers in different processes)."""
ALL_EMOPREP = ["settings.norm=pre", "settings.input_dropout=true", "settings.head_dropout=true",
               "settings.fusion=softmax", "settings.text_summary=pooler", "optim.grad_clip=2.0"]
"""Every architecture choice as emoprep made it before this change (``FE2ESettings.SAVED_BEFORE``)."""


# --- one run, in its own process -----------------------------------------------------------------

def worker(job: dict) -> dict:
    """Trains one model in this process (whose ``PYTHONPATH`` chose the revision) and returns its record."""
    import torch

    torch.set_num_threads(1)
    import emoprep
    import emoprep.pipelines
    from emoprep.train.config import parse_sets
    from emoprep.train.run import train

    t0 = time.perf_counter()
    result = train(job["model"], Path(job["shards"]), Path(job["out"]), sets=parse_sets(job["sets"]), seed=job["seed"],
                   device="cpu", quiet=True)
    seconds = time.perf_counter() - t0
    test = result["test"]["average"]
    head = "wacc" if result.get("task") == "multilabel" else "acc"
    run_json = Path(job["out"]) / "run.json"
    info = json.loads(run_json.read_text()) if run_json.is_file() else {}
    return {
        "test_f1": test["f1"], f"test_{head}": test.get(head),
        "valid_f1": result.get("valid", {}).get("average", {}).get("f1"),
        "chosen_epoch": result.get("chosen_epoch"), "epochs_run": result.get("epochs_run"), "seconds": seconds,
        "seconds_per_epoch": seconds / max(1, result.get("epochs_run") or 1),
        "parameters": info.get("parameters"), "chosen": info.get("chosen"),
        "emoprep_imported_from": str(Path(emoprep.__file__).parent),
        "pipelines_imported_from": str(Path(emoprep.pipelines.__file__).parent),
    }


def run_job(job: dict) -> dict:
    """``job`` in a fresh ``python`` whose ``PYTHONPATH`` is the job's code root."""
    env = {**os.environ, **ENV, "PYTHONPATH": job["root"]}
    result_file = Path(job["out"] + ".result.json")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job), str(result_file)],
                          env=env, capture_output=True, text=True)
    record = {k: job[k] for k in ("model", "revision", "variant", "seed", "sets")}
    if proc.returncode != 0 or not result_file.is_file():
        record.update(error=(proc.stderr or proc.stdout)[-3000:], seconds=time.perf_counter() - t0)
        print(f"FAILED {job['model']} {job['variant']} seed {job['seed']}:\n{record['error']}", file=sys.stderr)
        return record
    record.update(json.loads(result_file.read_text()))
    expected = str(Path(job["root"]).resolve() / "emoprep")
    if str(Path(record["emoprep_imported_from"]).resolve()) != expected:
        record["error"] = f"imported emoprep from {record['emoprep_imported_from']}, not {expected}"
        print(f"FAILED {job['model']} {job['variant']} seed {job['seed']}: {record['error']}", file=sys.stderr)
    print(f"{job['model']:5s} {job['variant']:20s} seed {job['seed']}: test F1 {record.get('test_f1', float('nan')):.3f} "
          f"({record.get('epochs_run')} epochs, {record['seconds']:.0f} s)", flush=True)
    return record


# --- the revisions ---------------------------------------------------------------------------------

def extract_revision(rev: str, dest: Path) -> Path:
    """The files of ``rev`` in ``dest``, laid out as the installed package: ``pipelines/`` and
    ``schemas/`` (top-level in the repository, ``emoprep.pipelines`` / ``emoprep.schemas`` once
    installed) copied into ``emoprep/``, so that the old code reads its own configuration files and
    not the editable install's (which maps them to the working tree)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev],
                             check=True, capture_output=True).stdout
    tar = dest.parent / f"{dest.name}.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else t.extractall(dest)
    tar.unlink()
    for name in ("pipelines", "schemas"):
        if (dest / name).is_dir() and not (dest / "emoprep" / name).exists():
            shutil.copytree(dest / name, dest / "emoprep" / name)
    return dest


def revision_of(rev: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def summarise(runs: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for r in runs:
        if "error" in r:
            continue
        group = out.setdefault(r["model"], {}).setdefault(
            r["variant"], {"f1": [], "wacc_or_acc": [], "epochs_run": [], "seconds": []})
        group["f1"].append(r["test_f1"])
        group["wacc_or_acc"].append(r.get("test_wacc", r.get("test_acc")))
        group["epochs_run"].append(r["epochs_run"])
        group["seconds"].append(r["seconds"])
    for model in out.values():
        for g in model.values():
            for key in ("f1", "wacc_or_acc"):
                values = [v for v in g[key] if v is not None]
                g[f"{key}_mean"] = statistics.mean(values) if values else None
                g[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            g["n"] = len(g["f1"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=Path, default=REPO / "shards" / "demo60")
    ap.add_argument("--models", default="fe2e,mesm")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", dest="sets", action="append", default=None,
                    help=f"override for every run of both revisions (repeatable; given, it replaces the default "
                         f"{' '.join(DEFAULT_SETS)})")
    ap.add_argument("--before", default="e7b0523", help="git revision of the 'before' code")
    ap.add_argument("--no-before", action="store_true", help="only the working tree (and --variants)")
    ap.add_argument("--variants", default="", help=f"'all' or a comma list of: {', '.join([*VARIANTS, 'all_emoprep'])}")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/emoprep-bench-paper-settings"))
    ap.add_argument("--out", type=Path, default=RESULTS / "paper_settings.json")
    args = ap.parse_args()

    sets = DEFAULT_SETS if args.sets is None else args.sets
    albert = any(s.replace(" ", "") == "settings.text_encoder=albert" for s in sets)
    names = [*VARIANTS, "all_emoprep"] if args.variants == "all" else [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS and v != "all_emoprep"]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join([*VARIANTS, 'all_emoprep'])}")
    skipped = [v for v in names if v == "text_summary=pooler" and not albert]
    names = [v for v in names if v not in skipped]

    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    roots = {"after": str(REPO)}
    before_commit = None
    if not args.no_before:
        before_commit = revision_of(args.before)
        roots["before"] = str(extract_revision(args.before, args.work / f"code-{args.before}"))
    shards = str(args.shards.resolve())
    jobs = []
    for model in args.models.split(","):
        for seed in map(int, args.seeds.split(",")):
            plan = [(rev, rev, []) for rev in ("before", "after") if rev in roots]
            for name in names:
                if model not in ONLY_FOR.get(name, (model,)):
                    continue
                extra = ALL_EMOPREP if name == "all_emoprep" else VARIANTS[name]
                if not albert:
                    extra = [s for s in extra if not s.startswith("settings.text_summary")]
                plan.append(("after", name, extra))
            for revision, variant, extra in plan:
                out = args.work / "runs" / f"{model}-{variant.replace('=', '_')}-{seed}"
                out.parent.mkdir(parents=True, exist_ok=True)
                jobs.append({"model": model, "revision": revision, "variant": variant, "seed": seed,
                             "root": roots[revision], "shards": shards, "out": str(out), "sets": [*sets, *extra]})
    print(f"{len(jobs)} runs, {args.jobs} at a time; overrides for every run: {' '.join(sets)}", flush=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:  # each thread waits on its own python process
        runs = list(pool.map(run_job, jobs))
    summary = summarise(runs)
    result = {
        "shards": shards,
        "models": args.models.split(","),
        "seeds": [int(s) for s in args.seeds.split(",")],
        "sets_for_every_run": sets,
        "environment": ENV,
        "before": {"revision": args.before, "commit": before_commit} if before_commit else None,
        "after": {"revision": "working tree", "head": revision_of("HEAD")},
        "variants": {name: (ALL_EMOPREP if name == "all_emoprep" else VARIANTS[name]) for name in names},
        "variants_skipped": {v: "needs settings.text_encoder=albert" for v in skipped},
        "note": ("before and after differ in every commit since --before (text lr, mixed precision, sparse stages, "
                 "...), not only the architecture choices; after - all_emoprep isolates those."),
        "seconds": time.perf_counter() - t0,
        "summary": summary,
        "runs": runs,
        "failed": sum("error" in r for r in runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for model, groups in summary.items():
        for variant, g in groups.items():
            print(f"{model:5s} {variant:20s} test avg F1 {g['f1_mean']:.3f} ± {g['f1_std']:.3f}   "
                  f"WAcc/Acc {g['wacc_or_acc_mean'] or float('nan'):.3f} ± {g['wacc_or_acc_std']:.3f}   (n={g['n']})")
    print(f"wrote {args.out}" + (f"; {result['failed']} run(s) failed" if result["failed"] else ""))
    if result["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        record = worker(json.loads(sys.argv[2]))
        Path(sys.argv[3]).write_text(json.dumps(record))
    else:
        main()
