"""Benchmark extraction into object storage against extraction into a local folder, in one run.

The same ``emoprep extract`` command (the demo corpus at its default size, 12 videos of 4 clips,
every modality of its spec, ``--workers 2``)
writes once into a local folder and once into ``s3://`` on moto's S3 server (the one the tests use,
served from this process on localhost), the two interleaved ``--repeats`` times so that a busy moment
of the machine hits both.  Each run is a fresh ``python -m emoprep`` process; per run:

* ``cpu_s``: CPU seconds of the command and all its processes (the Dask workers included), from
  ``getrusage(RUSAGE_CHILDREN)`` around it — the cost of extraction, unaffected by other users of
  the machine;
* ``wall_s``: its wall time (depends on the machine's load; reported, not compared);
* ``store_cpu_s`` (S3 runs): CPU seconds of this process meanwhile, i.e. moto's server answering —
  the store's work, which a real S3 does elsewhere, so not counted in ``cpu_s``;
* ``utterances_per_cpu_s`` and ``utterances_per_wall_s``.

``s3_client_start_cpu_s``: CPU seconds a fresh process spends to import s3fs and make its first
requests (one PUT, one listing) — paid once by the driver and once by each worker, whatever the
corpus size, so on a small corpus it is most of the difference between the two targets.

``summary.s3_over_local``: S3 throughput as a fraction of local throughput (medians; per CPU second
and per wall second); the target is >= 0.9.  The shards written to S3 are checked to equal the local
ones (same sha256 in both manifests).

Run: ``python benchmarks/bench_object_store.py [--videos 12] [--clips 4] [--shard-size N] [--repeats 2]
[--modalities text,logmel] [--out benchmarks/results]``; about eight minutes on 2 cores with the
defaults (``--videos 4 --clips 3``: a quick look, where the fixed start-up costs above weigh more).
Writes ``object_store-<videos>videos[-<shard size>].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoprep.extraction.readers.demo.corpus import build_demo
from emoprep.format.storage import STORAGE_OPTIONS_ENV, Folder
from emoprep.testing.object_store import moto_s3

TARGETS = ("local", "s3")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CLIENT_START = r"""
import json, sys, time
from emoprep.format.storage import Folder
folder = Folder.of(sys.argv[1], json.loads(sys.argv[2]))
t = time.process_time()
folder.write_bytes("probe", b"x")
folder.names()
print(time.process_time() - t)
"""


def client_start_cpu(url: str, options: dict) -> float:
    """CPU seconds of s3fs's import and first requests in a fresh process (see the module docstring)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", CLIENT_START, url, json.dumps(options)], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True)
    return round(float(run.stdout.strip().splitlines()[-1]), 3)


def extract(root: Path, out: str, args: argparse.Namespace, options: dict | None) -> dict:
    """One ``emoprep extract`` process into ``out``; its CPU and wall seconds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    if options:
        env[STORAGE_OPTIONS_ENV] = json.dumps(options)
    command = [sys.executable, "-m", "emoprep", "extract", "--dataset", "demo", "--root", str(root), "--out", out,
               "--workers", "2", "--quiet"]
    if args.shard_size:
        command += ["--shard-size", str(args.shard_size)]
    if args.modalities:
        command += ["--modalities", args.modalities]
    cpu, own, wall = _children_cpu(), time.process_time(), time.perf_counter()
    run = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    result = {"cpu_s": round(_children_cpu() - cpu, 2), "wall_s": round(time.perf_counter() - wall, 2),
              "store_cpu_s": round(time.process_time() - own, 2) if options else None}
    if run.returncode not in (0, 3):  # 3: complete, with utterance failures recorded
        raise RuntimeError(f"extract into {out} failed ({run.returncode}):\n{run.stderr}")
    return result


def shard_entries(folder: Folder) -> list[dict]:
    return json.loads(folder.read_text("manifest.json"))["shards"]


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=12, help="videos of the demo corpus (its default: 12)")
    ap.add_argument("--clips", type=int, default=4, help="clips (utterances) per video (the demo's: 4)")
    ap.add_argument("--shard-size", type=int, help="utterances per shard (default: extract's own, 64); "
                    "small shards weigh the per-shard upload and checks more")
    ap.add_argument("--repeats", type=int, default=2, help="runs per target, interleaved (medians reported)")
    ap.add_argument("--modalities", help="comma list (default: the demo spec's, every modality)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict = {"machine": machine(), "videos": args.videos, "clips": args.clips, "shard_size": args.shard_size,
                    "modalities": args.modalities or "demo spec (text, acoustic, logmel, visual)",
                    "workers": 2, "repeats": args.repeats, "runs": {t: [] for t in TARGETS}}

    with tempfile.TemporaryDirectory(prefix="bench_object_store-") as tmp, moto_s3() as store:
        result["s3_client_start_cpu_s"] = client_start_cpu(f"{store.bucket('probe')}/x", store.options)
        root = Path(tmp) / "demo"
        build_demo(root, n_videos=args.videos, clips_per_video=args.clips, seed=3)
        for i in range(args.repeats):
            local = Folder.of(Path(tmp) / f"local-{i}")
            remote = Folder.of(f"{store.bucket('bench')}/demo", store.options)
            for target, folder in (("local", local), ("s3", remote)):
                run = extract(root, folder.location, args, store.options if folder.remote else None)
                run["utterances"] = json.loads(folder.read_text("manifest.json"))["counts"]["utterances"]
                result["runs"][target].append(run)
                print(f"{target:5s} cpu {run['cpu_s']:7.1f} s  wall {run['wall_s']:7.1f} s", file=sys.stderr)
            if shard_entries(local) != shard_entries(remote):
                raise RuntimeError("the shards written to S3 differ from the local ones")

    summary: dict = {}
    for target in TARGETS:
        runs = result["runs"][target]
        summary[target] = {
            "cpu_s": round(median(r["cpu_s"] for r in runs), 2),
            "wall_s": round(median(r["wall_s"] for r in runs), 2),
            "utterances_per_cpu_s": round(median(r["utterances"] / r["cpu_s"] for r in runs), 3),
            "utterances_per_wall_s": round(median(r["utterances"] / r["wall_s"] for r in runs), 3),
        }
    summary["s3"]["store_cpu_s"] = round(median(r["store_cpu_s"] for r in result["runs"]["s3"]), 2)
    summary["s3_over_local"] = {
        key: round(summary["s3"][key] / summary["local"][key], 3)
        for key in ("utterances_per_cpu_s", "utterances_per_wall_s")
    }
    summary["target"] = ">= 0.9 (s3 throughput over local)"
    result["summary"] = summary
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    path = args.out / f"object_store-{args.videos}videos{f'-{args.shard_size}' if args.shard_size else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({**summary, "s3_client_start_cpu_s": result["s3_client_start_cpu_s"]}, indent=2))
    print(f"written: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
