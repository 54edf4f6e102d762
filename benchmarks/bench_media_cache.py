"""Benchmark what workers download when the media are on object storage: bytes per recording with the
per-worker cache (:mod:`emoprep.extraction.media.fetch`), against what one download per task would
fetch.  Target: each recording downloaded at most once per worker.

A demo corpus (``--videos`` recordings, ``--clips`` utterances each; an MP4 and a WAV per recording)
is uploaded to moto's S3 server (:mod:`emoprep.testing.object_store`, a real S3 endpoint on localhost)
with a recordings list naming the objects, and extracted (``--modalities``, default logmel,visual so
that both files of each recording are decoded) by a Dask ``LocalCluster`` of ``--workers`` processes
that the run joins by scheduler file, as on a real cluster.  Then each worker's cache counters are
read.  Figures:

* ``files``, ``file_bytes``: the media objects and their total size;
* per worker: ``downloads``, ``downloaded_bytes``, ``hits`` (decodes served from the cache),
  ``max_fetches_per_file`` (1 = the target), ``evictions``;
* ``downloaded_bytes_per_file``: all workers' bytes over the files (at most ``workers`` x the mean
  file size when the target holds; 1x when each recording lands on one worker);
* ``fetches_per_file_per_worker_max``: the largest count of one file on one worker;
* ``per_task_bytes``: what one download per extraction task that touches a file would fetch (the
  parts of shards are the tasks: ``emoprep.extraction.engine.plan``), and ``saved_fraction``;
* ``cpu_seconds``: CPU time (not wall time) of the driver process and of each worker process over
  the extraction (``time.process_time`` deltas; each worker's includes its model loading).

Run: ``python benchmarks/bench_media_cache.py [--videos 6] [--clips 3] [--workers 2]
[--modalities logmel,visual] [--out benchmarks/results]``; about a minute on 2 cores.  Writes
``media_cache.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoprep.extraction import run_extract  # noqa: E402
from emoprep.extraction.config import build_config  # noqa: E402
from emoprep.extraction.engine.plan import part_ranges, part_rows, plan_shards  # noqa: E402
from emoprep.extraction.media.fetch import cache_stats  # noqa: E402
from emoprep.extraction.readers import read_dataset  # noqa: E402
from emoprep.extraction.readers.demo.corpus import build_demo  # noqa: E402
from emoprep.testing.object_store import moto_s3  # noqa: E402
from emoprep.testing.remote_media import publish_recordings  # noqa: E402

LABELS = "anger,disgust,fear,happiness,sadness,surprise"


def _cpu() -> float:
    return time.process_time()


def per_task_bytes(utterances, sizes: dict[str, int], shard_size: int) -> int:
    """Bytes that one download per task and file would fetch: each part of each shard downloads
    every file its utterances use, once."""
    total = 0
    specs = plan_shards(utterances, shard_size)
    rows = part_rows(len(utterances))
    for spec in specs:
        for a, b in part_ranges(len(spec.utterances), rows):
            used = {p for u in spec.utterances[a:b] for p in (u.video_path, u.audio_path) if p}
            total += sum(sizes[p] for p in used)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=4)
    ap.add_argument("--modalities", default="logmel,visual")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    tmp = Path(tempfile.mkdtemp(prefix="bench-media-cache-"))
    os.environ.setdefault("EMOPREP_CACHE", str(tmp / "cache"))
    root = tmp / "demo"
    build_demo(root, n_videos=args.videos, clips_per_video=args.clips, seed=5)
    demo = read_dataset("demo", root, build_config("demo", {}))
    with moto_s3() as store:
        bucket = store.bucket("bench-media")
        published = publish_recordings(demo.utterances, demo.label_names, tmp / "lists", f"{bucket}/raw",
                                       store.options)
        config = build_config("recordings", {"shard_size": args.shard_size, "modalities": args.modalities.split(","),
                                             "dataset_options": {"label_names": LABELS}})
        remote = read_dataset("recordings", published.remote_list, config, store.options)
        sizes = {url: Path(local).stat().st_size for local, url in published.media.items()}
        scheduler_file = tmp / "scheduler.json"
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          scheduler_kwargs={"scheduler_file": str(scheduler_file)}) as cluster, \
                Client(cluster) as client:
            client.wait_for_workers(args.workers)
            workers_before = client.run(_cpu)
            driver_before = _cpu()
            summary = run_extract(config, published.remote_list, tmp / "shards", storage_options=store.options,
                                  scheduler_file=str(scheduler_file))
            driver_cpu = _cpu() - driver_before
            workers_cpu = {w: c - workers_before[w] for w, c in client.run(_cpu).items()}
            stats = {w: s for w, s in client.run(cache_stats).items() if s is not None}
    if not summary.complete:
        raise SystemExit(f"extraction incomplete: {summary.shard_errors}")
    per_worker = {
        w: {"downloads": s.downloads, "downloaded_bytes": s.downloaded_bytes, "hits": s.hits,
            "evictions": s.evictions, "max_fetches_per_file": max(s.fetched.values(), default=0),
            "files": len(s.fetched)}
        for w, s in stats.items()
    }
    downloaded = sum(s.downloaded_bytes for s in stats.values())
    naive = per_task_bytes(remote.utterances, sizes, args.shard_size)
    result = {
        "benchmark": "media_cache",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "settings": vars(args) | {"out": str(args.out)},
        "utterances": summary.utterances,
        "files": len(sizes),
        "file_bytes": sum(sizes.values()),
        "workers": per_worker,
        "downloaded_bytes": downloaded,
        "downloaded_bytes_per_file": downloaded / len(sizes),
        "mean_file_bytes": sum(sizes.values()) / len(sizes),
        "fetches_per_file_per_worker_max": max(w["max_fetches_per_file"] for w in per_worker.values()),
        "target_met": all(w["max_fetches_per_file"] <= 1 for w in per_worker.values()),
        "per_task_bytes": naive,
        "saved_fraction": 1 - downloaded / naive if naive else None,
        "cpu_seconds": {"driver": driver_cpu, "workers": workers_cpu},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "media_cache.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("files", "file_bytes", "downloaded_bytes", "downloaded_bytes_per_file",
                                             "fetches_per_file_per_worker_max", "per_task_bytes", "saved_fraction")},
                     indent=2))


if __name__ == "__main__":
    main()
