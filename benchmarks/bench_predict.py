"""`emoprep predict` wall time beside `emoprep extract` alone, on the same 3-minute 720p video.

The video is generated as ``bench_extract_720p.py`` generates its recordings (a real talking-head clip
from the sample media beside the project, looped and padded to 1280x720 at 30 fps H.264, with real
emotional speech looped as its audio).  Two cases:

* ``windows``: no transcript, so predict cuts the video into 4 s windows every 2 s;
* ``srt``: an ``.srt`` beside the video, cues of 6 s with 1 s between them (like MOSEI segments).

For each trained run (a tiny lf-lstm and a tiny fe2e trained on the demo corpus, unless ``--run`` names
runs), each case runs in fresh processes: ``emoprep predict RUN video.mp4 --out preds.parquet``, then
``emoprep extract --dataset recordings`` over a recordings list of exactly the utterances predict cut,
with a spec holding the extraction configuration predict used (the same config hash is checked).
Both on the same Dask runtime (``--workers``, default 2 = this machine's cores).  The figure is
``predict_over_extract`` = predict wall / extract wall (the issue's target: at most 1.2); with
``--repeat N`` each command runs N times, alternating which of the two goes first, and the fastest of
each is compared.

Run: ``python benchmarks/bench_predict.py [--minutes 3] [--workers 2] [--models lf-lstm,fe2e] [--run RUN ...]
[--repeat 1] [--name predict] [--out benchmarks/results]``.  Writes ``<name>.json``.  Needs ffmpeg (with libx264) and the sample media (``../shared/data``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(REPO)]
import pyarrow.parquet as pq  # noqa: E402

from bench_extract_720p import SHARED, make_recordings  # noqa: E402  (the same generated video)
from emoprep.extraction.config import config_from_hashed  # noqa: E402
from emoprep.format.manifest import read_manifest  # noqa: E402

TINY = {
    "lf-lstm": ["optim.epochs=3", "optim.batch_size=8", "settings.hidden=16"],
    "fe2e": ["optim.epochs=2", "optim.batch_size=8", "settings.d_model=16", "settings.heads=2", "settings.layers=1",
             "settings.ff=32", "settings.mlp_hidden=16", "settings.cnn_width=0.25"],
}
CUE_S, GAP_S = 6.0, 1.0
LINES = ("and I really think it was fine", "I cannot believe they did that", "well that went better than expected")


def emoprep(*args: str, env: dict[str, str] | None = None) -> float:
    """``python -m emoprep ARGS`` in a fresh process; its wall seconds (exit 0 or 3 expected)."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "emoprep", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})})
    wall = time.perf_counter() - t
    if done.returncode not in (0, 3):
        raise RuntimeError(f"emoprep {' '.join(args)} failed ({done.returncode}): {done.stderr[-3000:]}")
    return wall


def write_srt(path: Path, seconds: float) -> int:
    cues, start, k = [], 0.0, 0
    while start + CUE_S <= seconds:
        a, b = start, start + CUE_S
        stamp = [f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d},{int(round(t % 1 * 1000)):03d}" for t in (a, b)]
        cues.append(f"{k + 1}\n{stamp[0]} --> {stamp[1]}\n{LINES[k % len(LINES)]}\n")
        start, k = b + GAP_S, k + 1
    path.write_text("\n".join(cues))
    return len(cues)


def train_runs(folder: Path, models: list[str]) -> dict[str, Path]:
    """Tiny runs of ``models`` on the demo corpus (12 videos), extracted and trained here."""
    shards = folder / "demo-shards"
    emoprep("extract", "--dataset", "demo", "--out", str(shards), "--quiet")
    runs = {}
    for model in models:
        sets = [a for s in TINY[model] for a in ("--set", s)]
        emoprep("train", model, "--shards", str(shards), "--out", str(folder / model), "--quiet", "--device", "cpu", *sets)
        runs[model] = folder / model
    return runs


def extract_spec(features: Path, spec: Path) -> str:
    """A ``--spec`` YAML holding the configuration predict extracted ``features`` with; its config hash."""
    manifest = read_manifest(features)
    d = dataclasses.asdict(config_from_hashed(manifest.config))
    d["text"] = {k: v for k, v in d["text"].items() if k not in ("glove", "glove_checksum")}
    spec.write_text(yaml.safe_dump({k: d[k] for k in ("modalities", "shard_size", "sample_rate", "text", "acoustic",
                                                       "logmel", "visual")}))
    return manifest.config_hash


def measure(run: Path, video: Path, folder: Path, case: str, runtime: list[str], repeat: int) -> dict:
    """Predict and extract ``repeat`` times each, alternating which goes first; the fastest of each."""
    tag = f"{run.name}-{case}"
    walls: dict[str, list[float]] = {"predict": [], "extract": []}
    config_hash = ""
    for r in range(repeat):
        order = ("predict", "extract") if r % 2 == 0 else ("extract", "predict")
        for what in order:
            if what == "predict":
                features = folder / f"{tag}-{r}-features"
                walls["predict"].append(emoprep("predict", str(run), str(video), "--out", str(folder / f"{tag}.parquet"),
                                                "--quiet", "--keep-features", str(features), *runtime))
                config_hash = extract_spec(features / "features", folder / f"{tag}.yaml")
            else:
                if not config_hash:  # the spec comes from a predict run: the first round runs predict first
                    raise RuntimeError("extract before any predict")
                out = folder / f"{tag}-{r}-extract"
                walls["extract"].append(emoprep("extract", "--dataset", "recordings", "--root",
                                                str(folder / f"{tag}-0-features" / "recordings.jsonl"), "--out", str(out),
                                                "--spec", str(folder / f"{tag}.yaml"), "--quiet", *runtime))
                if read_manifest(out).config_hash != config_hash:
                    raise RuntimeError(f"{tag}: extract ran another configuration than predict")
    table = pq.read_table(folder / f"{tag}.parquet")
    result = {"utterances": table.num_rows, "failure_rows": sum(e is not None for e in table.column("error").to_pylist()),
              "modalities": sorted(set(table.column("modalities").to_pylist()) - {None}),
              "predict_wall_s": walls["predict"], "extract_wall_s": walls["extract"],
              "predict_over_extract": min(walls["predict"]) / min(walls["extract"]), "same_config_hash": True}
    print(tag, json.dumps(result), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=2, help="local Dask cluster workers (0: --synchronous)")
    ap.add_argument("--models", default="lf-lstm,fe2e")
    ap.add_argument("--run", type=Path, action="append", help="trained run folder(s) to use instead of training")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each command, alternating their order (fastest kept)")
    ap.add_argument("--name", default="predict", help="the JSON file's name (without .json)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    if not SHARED.is_dir() or shutil.which("ffmpeg") is None:
        sys.exit("needs ../shared/data (the real sample media) and ffmpeg")
    seconds = args.minutes * 60
    runtime = ["--workers", str(args.workers)] if args.workers else ["--synchronous"]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache = {"EMOPREP_CACHE": str(folder / "cache")} if "EMOPREP_CACHE" not in os.environ else {}
        os.environ.update(cache)
        t = time.perf_counter()
        runs = {r.name: r for r in args.run} if args.run else train_runs(folder, args.models.split(","))
        setup_s = time.perf_counter() - t
        t = time.perf_counter()
        (plain,) = make_recordings(folder, 1, seconds)
        with_srt = folder / "with-srt.mp4"
        shutil.copy(plain, with_srt)
        cues = write_srt(with_srt.with_suffix(".srt"), seconds)
        generate_s = time.perf_counter() - t
        for name, run in runs.items():
            results[name] = {"windows": measure(run, plain, folder, "windows", runtime, args.repeat),
                             "srt": measure(run, with_srt, folder, "srt", runtime, args.repeat)}
    out = {"video": {"seconds": seconds, "size": "1280x720", "fps": 30, "codec": "h264", "srt_cues": cues,
                     "cue_s": CUE_S, "gap_s": GAP_S, "window_s": 4.0, "hop_s": 2.0},
           "runtime": runtime, "repeat": args.repeat, "cpu": os.cpu_count(), "setup_s": setup_s, "generate_s": generate_s, "results": results,
           "summary": {f"{m}/{c}": round(r["predict_over_extract"], 3) for m, cases in results.items() for c, r in cases.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["summary"], indent=2))


if __name__ == "__main__":
    main()
