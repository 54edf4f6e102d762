"""How long a corpus reader on a URL root spends probing media headers: one after another against
:meth:`~emoprep.extraction.readers.segments.SegmentCleaner.probe_ahead` (16 at a time), in one run.

A reader on ``--root s3://bucket/MOSEI`` learns where each recording ends from its header (one or two
ranged requests), so the time is the store's latency times the number of recordings.  Localhost has no
latency, so moto's S3 server runs in a subprocess behind a WSGI wrapper that waits ``--latency``
seconds before answering each request (20 ms is a fast region-local S3).  ``--videos`` copies of a
real talking-head clip (``../shared/data/faces/single_face.mp4``) are probed both ways, and the ends
are checked to be the same.

Run: ``python benchmarks/bench_probe_urls.py [--videos 60] [--latency 0.02] [--out benchmarks/results]``;
under a minute.  Writes ``probe_urls.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CLIP = REPO.parent / "shared" / "data" / "faces" / "single_face.mp4"

SERVER = """
import os, sys, time
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
app = DomainDispatcherApplication(create_backend_app)
latency = float(os.environ["LATENCY"])
def slow(environ, start_response):
    time.sleep(latency)
    return app(environ, start_response)
run_simple("127.0.0.1", int(sys.argv[1]), slow, threaded=True)
"""
"""moto's S3 server, every answer ``LATENCY`` seconds late."""


def main() -> None:
    import boto3

    from emoprep.extraction.media.probe import media_end_s
    from emoprep.extraction.readers.segments import PROBE_THREADS, SegmentCleaner
    from emoprep.format.storage import filesystem

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--latency", type=float, default=0.02, help="seconds added to every S3 answer")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    if not CLIP.is_file():
        sys.exit(f"needs the real sample media: {CLIP}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=dict(os.environ, LATENCY=str(args.latency)),
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        options = {"key": "bench", "secret": "bench", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket="probe")
        fs, _ = filesystem("s3://probe", options)
        data = CLIP.read_bytes()
        urls = []
        for i in range(args.videos):
            fs.pipe_file(f"probe/videos/{i}.mp4", data)
            urls.append(f"s3://probe/videos/{i}.mp4")

        def end(url: str) -> float | None:
            return media_end_s(url, options)

        end(urls[0])  # the client's start-up, out of both timings
        t = time.perf_counter()
        one_by_one = [end(u) for u in urls]
        sequential_s = time.perf_counter() - t
        cleaner = SegmentCleaner([], {}, end)
        t = time.perf_counter()
        cleaner.probe_ahead(urls)
        ahead_s = time.perf_counter() - t
        if [cleaner.end_of([u]) for u in urls] != one_by_one:
            raise RuntimeError("probing ahead gave other ends")
    finally:
        server.kill()
    result = {"videos": args.videos, "clip_bytes": len(data), "latency_s_per_request": args.latency,
              "threads": PROBE_THREADS, "one_by_one_s": round(sequential_s, 3), "probe_ahead_s": round(ahead_s, 3),
              "speedup": round(sequential_s / ahead_s, 2), "cpus": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe_urls.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
