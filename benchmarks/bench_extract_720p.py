"""Extraction throughput on MOSEI-like video: long 1280x720 30 fps H.264 recordings with speech.

MOSEI is YouTube video, mostly 720p or more at 25-30 fps, cut into utterances of a few seconds.  This
benchmark generates such recordings from the real sample media beside the project (``../shared/data``):
the talking-head clips looped and padded to 1280x720 at 30 fps (libx264, default GOP and B-frames),
with the emotional-speech clips looped as the audio track, and a manifest cutting each recording into
back-to-back utterances (6 s, 1 s apart, like MOSEI segments).  It then runs ``emoprep extract
--dataset recordings`` in fresh processes and measures:

* ``startup``: what a worker pays before its first utterance - a fresh interpreter that builds the
  default pipeline's extractors as a worker does (``probe_extractors``: imports, models, warm-up):
  its CPU seconds and peak RSS (median of 3);
* ``visual``: face detection + crop at 2 fps alone (``--modalities visual --au-backend none``);
* ``acoustic``: the acoustic modality alone (DisVoice's 142 with phonet's network, openSMILE off);
* ``default``: the whole default pipeline (text, acoustic, log-mel, visual; AU backend none);

each in Dask's synchronous scheduler (one process, so its CPU time is one core's work), as
**real-time factors per core in steady state**: (utterance seconds of the full run - of a one-video
run) / (CPU seconds of the full run - of the one-video run), which removes start-up (imports, model
loading) from the figure.  And ``workers``: the default pipeline's wall time with a local Dask cluster
of 1 and of 2 workers (``--workers``), and their ratio, also in steady state (the one-video run's
wall time subtracted from each: start-up is paid once whatever the number of workers), the whole
default run's real-time factor per core *with* start-up (utterance seconds / CPU seconds of the
``--workers 2`` run, every process counted) and the peak RSS of its largest process (a worker).

``--baseline REV`` runs the same cases on another git revision of this repository too (checked out
in a temporary worktree and imported from there), so before/after ratios come from one run on one
machine.  Run: ``python benchmarks/bench_extract_720p.py [--minutes 9] [--videos 3]
[--baseline REV] [--cases startup,acoustic,default,workers] [--out benchmarks/results]``.  Writes
``extract_720p.json``.  Needs ffmpeg (with libx264) on the PATH.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CLIPS = ("faces/WolfgangLanger_Pexels.mp4", "faces/single_face.mp4")
SEGMENT_S, GAP_S = 6.0, 1.0


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_recordings(folder: Path, videos: int, seconds: float) -> list[Path]:
    """``videos`` recordings of ``seconds`` each: a looped talking-head clip padded to 1280x720 at
    30 fps with looped emotional speech as its audio (mono 16 kHz AAC, as YouTube audio decodes)."""
    speech = sorted((SHARED / "speech-emotion").glob("*.wav"))
    listing = folder / "speech.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in speech))
    audio = folder / "speech.wav"
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-ac", "1", "-ar", "16000", str(audio))
    out = []
    for v in range(videos):
        clip = SHARED / CLIPS[v % len(CLIPS)]
        path = folder / f"rec{v:02d}.mp4"
        _ffmpeg("-stream_loop", "-1", "-i", str(clip), "-stream_loop", "-1", "-i", str(audio), "-t", f"{seconds:.3f}",
                "-map", "0:v:0", "-map", "1:a:0",
                "-vf", "scale=-2:720,pad=1280:720:(ow-iw)/2:(oh-ih)/2,fps=30,format=yuv420p",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", "-b:a", "96k", str(path))
        out.append(path)
    return out


def write_manifest(path: Path, recordings: list[Path], seconds: float, limit_videos: int | None = None) -> float:
    """Back-to-back utterances over the recordings; returns their total duration in seconds."""
    rows, total = [], 0.0
    for rec in recordings[:limit_videos]:
        start, k = 0.0, 0
        while start + SEGMENT_S <= seconds:
            rows.append({"utterance_id": f"{rec.stem}_{k}", "video": rec.name, "start": f"{start:.3f}",
                         "end": f"{start + SEGMENT_S:.3f}", "text": "and I really think it was fine", "split": "train"})
            total += SEGMENT_S
            start += SEGMENT_S + GAP_S
            k += 1
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return total


MEASURED = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[2:], capture_output=True, text=True)
use = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"rc": done.returncode, "stderr": done.stderr[-2000:], "cpu_s": use.ru_utime + use.ru_stime,
           "peak_rss_mb": use.ru_maxrss / 1024}, open(sys.argv[1], "w"))
"""
"""Runs a command and reports the CPU seconds of it and every process it waited for, and the largest
peak RSS among them (``RUSAGE_CHILDREN`` of a fresh parent, so no earlier run counts)."""

STARTUP = """
import resource
try:
    from emoprep.extraction.config import build_config
    from emoprep.extraction.engine.worker import probe_extractors
except ImportError:  # a --baseline revision from before extraction became one package
    from emoprep.config import build_config
    from emoprep.shards.worker import probe_extractors
probe_extractors(build_config("recordings", {"visual": {"au_backend": "none"}}))
use = resource.getrusage(resource.RUSAGE_SELF)
print(use.ru_utime + use.ru_stime, use.ru_maxrss / 1024)
"""
"""A worker's start-up: a fresh interpreter that builds the default extractors as every worker does."""


def _measured(code: Path, cmd: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", MEASURED, report.name, *cmd], cwd=code, env=env, check=True)
        wall = time.perf_counter() - t
        result = json.loads(Path(report.name).read_text())
    if result["rc"] not in (0, 3):
        raise RuntimeError(f"{cmd[:4]} failed ({result['rc']}): {result['stderr']}")
    return {"wall_s": wall, "cpu_s": result["cpu_s"], "peak_rss_mb": result["peak_rss_mb"]}


def run_extract(code: Path, manifest: Path, out: Path, args: list[str]) -> dict[str, float]:
    """``emoprep extract`` from the source tree ``code`` in a fresh process: wall and CPU seconds
    (the process and every process it waited for: Dask's workers too) and the largest peak RSS."""
    cmd = [sys.executable, "-c", "import sys, cli; sys.argv[0] = 'emoprep'; cli.main()", "extract", "--dataset", "manifest",
           "--root", str(manifest), "--out", str(out), "--quiet", *args]
    return _measured(code, cmd)


def measure_startup(code: Path, repeats: int = 3) -> dict[str, float]:
    """Median CPU seconds and peak RSS of a worker's start-up (:data:`STARTUP`)."""
    runs = []
    for _ in range(repeats):
        env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", STARTUP], cwd=code, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"worker start-up failed: {done.stderr[-2000:]}")
        cpu, rss = map(float, done.stdout.split()[-2:])
        runs.append((cpu, rss))
    cpus, rsss = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
    return {"cpu_s": cpus[len(cpus) // 2], "peak_rss_mb": rsss[len(rsss) // 2], "cpu_s_runs": [r[0] for r in runs]}


CASES = {
    "visual": ["--modalities", "visual", "--au-backend", "none", "--synchronous"],
    "acoustic": ["--modalities", "acoustic", "--synchronous"],
    "default": ["--au-backend", "none", "--synchronous"],
}


def measure(code: Path, folder: Path, recordings: list[Path], seconds: float, cases: list[str], tag: str) -> dict:
    full = folder / "full.csv"
    one = folder / "one.csv"
    audio_full = write_manifest(full, recordings, seconds)
    audio_one = write_manifest(one, recordings, seconds, limit_videos=1)
    result: dict = {"utterance_seconds": audio_full}
    for case in cases:
        if case == "startup":
            result["startup"] = measure_startup(code)
        elif case == "workers":
            walls: dict[str, float] = {}
            cpus: dict[str, float] = {}
            rss: dict[str, float] = {}
            for n in (1, 2):
                for name, manifest in (("one", one), ("full", full)):
                    args_n = ["--au-backend", "none", "--workers", str(n)]
                    timing = run_extract(code, manifest, folder / f"{tag}-w{n}-{name}", args_n)
                    key = f"{name}_{n}"
                    walls[key], cpus[key], rss[key] = timing["wall_s"], timing["cpu_s"], timing["peak_rss_mb"]
            result["workers"] = {
                "wall_s": walls,
                "cpu_s": cpus,
                "peak_rss_mb": rss,
                # the default run (2 workers, one per core here), start-up included, every process counted
                "realtime_factor_per_core_whole_run": audio_full / cpus["full_2"],
                "speedup_2_over_1": walls["full_1"] / walls["full_2"],
                # start-up (cluster, imports, models in every worker) is paid once whatever the
                # worker count: the steady state compares the work after it
                "speedup_2_over_1_steady": (walls["full_1"] - walls["one_1"]) / (walls["full_2"] - walls["one_2"]),
            }
        else:
            small = run_extract(code, one, folder / f"{tag}-{case}-one", CASES[case])
            big = run_extract(code, full, folder / f"{tag}-{case}-full", CASES[case])
            steady = (big["cpu_s"] - small["cpu_s"]) / (audio_full - audio_one)
            result[case] = {"one_video": small, "all_videos": big, "cpu_s_per_utterance_s": steady,
                            "realtime_factor_per_core": 1 / steady,
                            "realtime_factor_whole_run": audio_full / big["cpu_s"]}
        print(tag, case, json.dumps(result[case]), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=9.0, help="utterance minutes in all (before the gaps)")
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--baseline", help="a git revision to measure beside the working tree")
    ap.add_argument("--cases", default="startup,acoustic,default,workers")
    ap.add_argument("--keep", type=Path, help="keep the generated recordings in this folder (reused when present)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    if not SHARED.is_dir() or shutil.which("ffmpeg") is None:
        sys.exit("needs ../shared/data (the real sample media) and ffmpeg")
    cases = args.cases.split(",")
    seconds = args.minutes * 60 / args.videos * (SEGMENT_S + GAP_S) / SEGMENT_S
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        media = args.keep or folder
        media.mkdir(parents=True, exist_ok=True)
        recordings = sorted(media.glob("rec*.mp4"))
        if len(recordings) < args.videos:
            t = time.perf_counter()
            recordings = make_recordings(media, args.videos, seconds)
            print(f"generated {len(recordings)} recordings of {seconds:.0f} s in {time.perf_counter() - t:.0f} s", flush=True)
        for rec in recordings:
            if media != folder:
                (folder / rec.name).symlink_to(rec)
        trees = {"current": REPO}
        if args.baseline:
            base = folder / "baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.baseline],
                           check=True, capture_output=True)
            trees = {"baseline": base, "current": REPO}
        results = {}
        try:
            for tag, code in trees.items():
                results[tag] = measure(code, folder, recordings, seconds, cases, tag)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder / "baseline")],
                               capture_output=True)
    summary = {}
    if "baseline" in results:
        for case in cases:
            if case == "startup":
                summary["worker_startup_cpu_s"] = {t: results[t]["startup"]["cpu_s"] for t in results}
                summary["worker_startup_peak_rss_mb"] = {t: results[t]["startup"]["peak_rss_mb"] for t in results}
                summary["worker_startup_current_over_baseline"] = (results["current"]["startup"]["cpu_s"]
                                                                   / results["baseline"]["startup"]["cpu_s"])
            elif case == "workers":
                summary["workers_speedup"] = {t: results[t]["workers"]["speedup_2_over_1"] for t in results}
                summary["workers_speedup_steady"] = {t: results[t]["workers"]["speedup_2_over_1_steady"] for t in results}
                summary["default_2_workers_realtime_per_core_with_startup"] = {
                    t: results[t]["workers"]["realtime_factor_per_core_whole_run"] for t in results}
                summary["default_2_workers_peak_rss_mb"] = {t: results[t]["workers"]["peak_rss_mb"]["full_2"] for t in results}
            else:
                summary[f"{case}_realtime_per_core"] = {t: results[t][case]["realtime_factor_per_core"] for t in results}
                summary[f"{case}_current_over_baseline"] = (results["current"][case]["realtime_factor_per_core"]
                                                            / results["baseline"][case]["realtime_factor_per_core"])
    out = {"recording": {"videos": args.videos, "seconds_each": seconds, "size": "1280x720", "fps": 30, "codec": "h264",
                         "segment_s": SEGMENT_S, "gap_s": GAP_S, "clips": list(CLIPS)},
           "cpu": os.cpu_count(), "baseline": args.baseline, "results": results, "summary": summary}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "extract_720p.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary or results, indent=2))


if __name__ == "__main__":
    main()
