"""Benchmark the visual modality on the real clips in ``<repo>/../shared/data`` and render a contact sheet.

Measures, in *sampled frames per CPU second* (process CPU time, all threads counted, so the figure
is per core whatever threading FFmpeg or MediaPipe use internally):

* ``decode``: sampling frames only (:class:`VideoFrameSource`);
* ``decode_detect_crop``: the ``visual`` extractor with AU backend ``none`` (decode, detection,
  crop, PNG encode) - the acceptance bar is 40 frames/CPU s at 2 fps (20x real time per core);
* ``openface_csv``: the extra cost of importing AUs from an OpenFace CSV;
* ``pyfeat``: only where py-feat and its weights are importable (not in the main venv);
* ``face_mesh_native_rate`` (also alone with ``--mesh-only``): the extractor with the face mesh on
  every frame of each clip (interval = 1 / the clip's frame rate, as MMSA-FET users run it), in
  MediaPipe's static mode (what emoprep did before) and in its tracking mode (what it does now on
  consecutive frames), with the speed-up and the mean distance between the two modes' landmarks.

Also reports the face detection rate per clip and writes ``contact_sheet.png`` (112 px crops, one
row per clip, a red cross where no face was found).  Run:
``python benchmarks/bench_visual.py [--out benchmarks/results]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoprep.extraction.config import ExtractConfig, VisualConfig  # noqa: E402
from emoprep.format.codecs import decode_crop  # noqa: E402
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia  # noqa: E402
from emoprep.extraction.media.video import VideoFrameSource  # noqa: E402
from emoprep.extraction.records import Utterance  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
UTTERANCE_S = 3.0


def clips() -> list[Path]:
    grid = sorted((SHARED / "grid").glob("*.mpg"))
    faces = [SHARED / "faces" / n for n in ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov")]
    return [p for p in grid + faces if p.exists()]


def duration_s(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration is not None:
            return float(s.duration * s.time_base)
        return float(c.duration) / 1e6


def utterances(path: Path) -> list[Utterance]:
    """The clip cut into consecutive 3 s utterances, like a shard's sorted utterances of one video."""
    dur = duration_s(path)
    out, t, k = [], 0.0, 0
    while t < dur - 0.05:
        end = min(dur, t + UTTERANCE_S)
        out.append(Utterance(f"{path.stem}_{k}", "bench", path.stem, t, end, video_path=str(path)))
        t, k = end, k + 1
    return out


def run_extractor(cfg: ExtractConfig, utts: list[Utterance]) -> tuple[list[dict], float, float, int]:
    from emoprep.extraction.extractors import build_extractor

    ex = build_extractor("visual", cfg)
    ex.check()
    # Warm up the models outside the timed part: workers load them once per process.
    with VideoFrameSource() as src:
        ex.extract(UtteranceMedia(utts[0], MediaOptions(frame_interval_s=cfg.visual.frame_interval_s), src))
    outs = []
    c0, w0 = time.process_time(), time.perf_counter()
    with VideoFrameSource.from_config(cfg) as src:
        for u in utts:
            outs.append(ex.extract(UtteranceMedia(u, MediaOptions(frame_interval_s=cfg.visual.frame_interval_s), src)))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = sum(len(o["frame_times_s"]) for o in outs)
    return outs, cpu, wall, n


def time_decode(utts: list[Utterance], interval: float) -> tuple[float, int]:
    c0 = time.process_time()
    n = 0
    with VideoFrameSource() as src:
        for u in utts:
            n += len(src.sample(u.video_path, u.start_s, u.end_s, interval, None))
    return time.process_time() - c0, n


def frame_rate(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.average_rate or s.guessed_rate)


def mesh_modes(paths: list[Path], repeats: int = 3) -> dict:
    """Face mesh at each clip's own frame rate: static mode (before) vs tracking mode (now).

    Same frames, same detector and crops; only the mesher differs.  Times are the best of
    ``repeats`` runs (the machine is shared), in frames per CPU second and per wall second.
    """
    from emoprep.extraction.extractors import build_extractor
    from emoprep.extraction.faces import FaceMesher

    cfg = ExtractConfig(dataset="bench", modalities=("visual",), visual=VisualConfig(face_mesh=True))
    work = [(u, 1.0 / frame_rate(p)) for p in paths for u in utterances(p)]
    runs: dict[str, dict] = {}
    meshes: dict[str, list] = {}
    for mode in ("static", "tracking"):
        ex = build_extractor("visual", cfg)
        ex.check()
        if mode == "static":
            ex.mesher.close()
            ex.mesher = FaceMesher(tracking=False)
        with VideoFrameSource() as src:  # warm-up outside the timed part
            ex.extract(UtteranceMedia(work[0][0], MediaOptions(frame_interval_s=work[0][1]), src))
        ex.run_stats()
        mesh_cpu = [0.0]
        landmarks = ex.mesher.landmarks

        def timed(*args, _inner=landmarks, _acc=mesh_cpu, **kw):  # the mesh step: crop, MediaPipe, conversion
            t0 = time.process_time()
            try:
                return _inner(*args, **kw)
            finally:
                _acc[0] += time.process_time() - t0

        ex.mesher.landmarks = timed
        best: tuple[float, float, float] | None = None
        for _ in range(repeats):
            outs = []
            mesh_cpu[0] = 0.0
            c0, w0 = time.process_time(), time.perf_counter()
            with VideoFrameSource() as src:
                for u, step in work:
                    outs.append(ex.extract(UtteranceMedia(u, MediaOptions(frame_interval_s=step), src)))
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            best = (cpu, wall, mesh_cpu[0]) if best is None or cpu < best[0] else best
        stats = ex.run_stats()
        ex.close()
        n = sum(len(o["frame_times_s"]) for o in outs)
        meshed = sum(m is not None for o in outs for m in o["face_mesh"])
        meshes[mode] = [m for o in outs for m in o["face_mesh"]]
        runs[mode] = {
            "frames": n,
            "frames_with_mesh": meshed,
            "tracked_frames": stats.get("face_mesh_tracked_frames", 0) // repeats,
            "cpu_s": round(best[0], 3),
            "wall_s": round(best[1], 3),
            "frames_per_cpu_s": round(n / best[0], 1),
            "frames_per_wall_s": round(n / best[1], 1),
            "mesh_step_cpu_ms_per_meshed_frame": round(1000 * best[2] / meshed, 2),
        }
    dists = [
        float(np.linalg.norm(np.reshape(a, (-1, 3))[:, :2] - np.reshape(b, (-1, 3))[:, :2], axis=1).mean())
        for a, b in zip(meshes["static"], meshes["tracking"])
        if a is not None and b is not None
    ]
    return {
        "clips": {p.name: round(frame_rate(p), 3) for p in paths},
        "utterances": len(work),
        **runs,
        "speedup_cpu": round(runs["static"]["cpu_s"] / runs["tracking"]["cpu_s"], 3),
        "speedup_wall": round(runs["static"]["wall_s"] / runs["tracking"]["wall_s"], 3),
        "speedup_mesh_step_cpu": round(
            runs["static"]["mesh_step_cpu_ms_per_meshed_frame"] / runs["tracking"]["mesh_step_cpu_ms_per_meshed_frame"], 3
        ),
        "landmark_distance_px": {
            "frames": len(dists),
            "mean": round(float(np.mean(dists)), 3),
            "median": round(float(np.median(dists)), 3),
            "p95": round(float(np.percentile(dists, 95)), 3),
            "max": round(float(np.max(dists)), 3),
            "note": "mean over the 468 points of |xy_static - xy_tracking| per frame, in source pixels",
        },
    }


def contact_sheet(rows: list[tuple[str, list[bytes | None]]], path: Path, tile: int = 112, per_row: int = 16) -> None:
    import cv2

    label_w = 190
    sheet = np.full((tile * len(rows), label_w + tile * per_row, 3), 255, np.uint8)
    for r, (name, crops) in enumerate(rows):
        cv2.putText(sheet, name[:18], (4, r * tile + tile // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
        idx = np.linspace(0, len(crops) - 1, min(per_row, len(crops))).round().astype(int) if crops else []
        for c, i in enumerate(idx):
            y, x = r * tile, label_w + c * tile
            if crops[i] is None:
                sheet[y : y + tile, x : x + tile] = 230
                cv2.line(sheet, (x + 8, y + 8), (x + tile - 8, y + tile - 8), (255, 0, 0), 2)
                cv2.line(sheet, (x + tile - 8, y + 8), (x + 8, y + tile - 8), (255, 0, 0), 2)
            else:
                img = decode_crop(crops[i])
                sheet[y : y + tile, x : x + tile] = cv2.resize(img, (tile, tile))
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--mesh-only", action="store_true", help="only the face mesh modes at native frame rate")
    args = ap.parse_args()
    paths = clips()
    if not paths:
        print(f"no clips under {SHARED}: nothing to benchmark", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    if args.mesh_only:
        mesh = {"machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count()},
                "face_mesh_native_rate": mesh_modes(paths)}
        (args.out / "visual_mesh.json").write_text(json.dumps(mesh, indent=1))
        print(json.dumps(mesh, indent=1))
        return 0
    utts = [u for p in paths for u in utterances(p)]
    media_s = sum(u.end_s - u.start_s for u in utts)
    visual = VisualConfig(frame_interval_s=args.interval)
    base = ExtractConfig(dataset="bench", modalities=("visual",), visual=visual)
    result: dict = {
        "machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count()},
        "clips": len(paths),
        "utterances": len(utts),
        "media_seconds": round(media_s, 2),
        "frame_interval_s": args.interval,
        "backends": {},
    }

    cpu, n = time_decode(utts, args.interval)
    result["backends"]["decode"] = {"frames": n, "cpu_s": round(cpu, 3), "frames_per_cpu_s": round(n / cpu, 1)}

    outs, cpu, wall, n = run_extractor(base, utts)
    rt = media_s / cpu
    result["backends"]["decode_detect_crop"] = {
        "frames": n,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "frames_per_cpu_s": round(n / cpu, 1),
        "realtime_factor_per_core": round(rt, 1),
        "meets_40_frames_per_cpu_s": n / cpu >= 40,
    }
    per_clip: dict[str, dict] = {}
    for u, o in zip(utts, outs):
        d = per_clip.setdefault(u.video_id, {"frames": 0, "with_face": 0})
        d["frames"] += len(o["face_missing"])
        d["with_face"] += sum(m is None for m in o["face_missing"])
    for d in per_clip.values():
        d["rate"] = round(d["with_face"] / d["frames"], 3)
    result["detection"] = per_clip

    csv = SHARED / "faces" / "OpenFace_Test.csv"
    if csv.exists():
        with tempfile.TemporaryDirectory() as tmp:
            for vid in per_clip:
                shutil.copy(csv, Path(tmp) / f"{vid}.csv")
            of_cfg = replace(base, visual=replace(visual, au_backend="openface", au_options=(("csv_dir", tmp),)))
            _, cpu_of, _, n_of = run_extractor(of_cfg, utts)
        result["backends"]["openface_csv"] = {
            "frames": n_of,
            "cpu_s": round(cpu_of, 3),
            "frames_per_cpu_s": round(n_of / cpu_of, 1),
            "note": "whole visual extractor incl. CSV import; the same CSV stands in for every clip",
        }
    try:
        import feat  # noqa: F401

        result["backends"]["pyfeat"] = {"note": "py-feat importable: run tests/unit/test_au_pyfeat.py for its timing"}
    except ImportError:
        result["backends"]["pyfeat"] = {"skipped": "py-feat is not importable in this environment"}

    result["face_mesh_native_rate"] = mesh_modes(paths)

    sheet_cfg = replace(base, visual=replace(visual, face_size=112))
    sheet_outs, *_ = run_extractor(sheet_cfg, utts)
    rows: dict[str, list] = {}
    for u, o in zip(utts, sheet_outs):
        rows.setdefault(u.video_id, []).extend(c["bytes"] if c else None for c in o["face_crops"])
    contact_sheet(list(rows.items()), args.out / "contact_sheet.png")
    (args.out / "visual.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
