"""Benchmark reading a shard folder from object storage against reading its local copy.

One synthetic folder (:func:`emoprep.testing.shards.build_shard_folder` with GloVe vectors, face
crops and log-mel chunks, so rows weigh what real ones do) is written locally and uploaded to a
bucket of moto's S3 server on localhost (a real S3 API over HTTP; a remote store adds its network
latency and bandwidth on top).  Each consumer runs on both, in this process, ``--repeats`` times
(best kept):

* ``read_shards``: the training split, every column, as one table;
* ``iter_shards``: the same rows as record batches of 256 (row group by row group, ranged reads);
* ``verify``: ``inspect --verify``'s check of every shard's size and sha256 (objects streamed);
* ``train``: ``emoprep train lf-lstm`` for 2 tiny epochs (the run folder local in both cases).

For each: ``seconds`` (wall) and ``cpu_seconds`` (this process's CPU time, all threads; moto's
server threads run in this process too, so the S3 figure includes the server's side), and the ratio
S3 / local.  The metrics of the two training runs are compared and must be equal.

Run: ``python benchmarks/bench_read_urls.py [--rows 480] [--repeats 3] [--out benchmarks/results]``;
writes ``read_urls.json``.  Needs the ``test`` extra (moto, s3fs).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _best(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """The fastest of ``repeats`` calls: wall seconds and this process's CPU seconds."""
    runs = []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        runs.append({"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c})
    return min(runs, key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=480, help="training rows (valid and test get a quarter each)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    import torch

    import emoprep
    from emoprep.format.storage import Folder
    from emoprep.format.verify import verify_output
    from emoprep.testing.object_store import moto_s3
    from emoprep.testing.shards import build_shard_folder
    from emoprep.train.config import parse_sets
    from emoprep.train.run import train

    torch.set_num_threads(1)
    sets = parse_sets(["optim.epochs=2", "optim.batch_size=16", "settings.hidden=8"])
    work = Path(tempfile.mkdtemp(prefix="bench-read-urls-"))
    local = build_shard_folder(work / "shards", {"train": args.rows, "valid": args.rows // 4, "test": args.rows // 4},
                               shard_size=64, glove=True, crops=True, logmel=True)
    results: dict[str, Any] = {}
    with moto_s3() as store:
        url = store.bucket("bench") + "/shards"
        folder, options = Folder.of(url, store.options), store.options
        for p in sorted(local.iterdir()):
            if p.is_file():
                folder.put(p, p.name)
        runs = iter(range(10**6))
        consumers: dict[str, Callable[[str | Path, dict | None], Any]] = {
            "read_shards": lambda where, o: emoprep.read_shards(where, "train", storage_options=o),
            "iter_shards": lambda where, o: sum(b.num_rows for b in emoprep.iter_shards(where, "train", storage_options=o)),
            "verify": lambda where, o: verify_output(where, o),
            "train": lambda where, o: train("lf-lstm", where, work / f"run-{next(runs)}", sets=sets, quiet=True,
                                            device="cpu", storage_options=o),
        }
        for name, consume in consumers.items():
            local_t = _best(lambda: consume(local, None), args.repeats)
            s3_t = _best(lambda: consume(url, options), args.repeats)
            results[name] = {"local": local_t, "s3": s3_t, "s3_over_local_seconds": s3_t["seconds"] / local_t["seconds"],
                             "s3_over_local_cpu": s3_t["cpu_seconds"] / local_t["cpu_seconds"]}
            print(name, json.dumps(results[name]))
        same = (train("lf-lstm", local, work / "check-local", sets=sets, quiet=True, device="cpu")
                == train("lf-lstm", url, work / "check-s3", sets=sets, quiet=True, device="cpu", storage_options=options))
    report = {"rows": args.rows, "shard_bytes": sum(p.stat().st_size for p in local.glob("*-of-*.parquet")),
              "repeats": args.repeats, "same_metrics": same, "python": platform.python_version(), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "read_urls.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: {m: round(v[m], 2) for m in ("s3_over_local_seconds", "s3_over_local_cpu")}
                      for k, v in results.items()}), "same metrics:", same)


if __name__ == "__main__":
    main()
