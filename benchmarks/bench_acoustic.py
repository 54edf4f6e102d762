"""Benchmark the acoustic modality on the real speech in ``<repo>/../shared/data/speech-emotion``.

Speeds are *seconds of audio per CPU second* (process CPU time, all threads counted, so the figure is
per core whatever TensorFlow, FFmpeg or openSMILE do internally), after models are loaded and warm:

* ``disvoice142``: the ``acoustic`` extractor's 142 features per 400 ms window (target >= 10x);
* ``logmel``: log-mel chunks; ``opensmile_egemaps`` / ``opensmile_compare``: LLD window means +
  functionals per backend;
* ``naive_disvoice_static``: the obvious route, DisVoice ``Articulation`` + ``Phonological``
  static extraction on every 400 ms chunk written to a wav file, on a subset of the same audio
  (``--baseline-seconds``), with ``disvoice142`` timed on that same subset for the speed-up
  (target >= 10x).

Memory: one fresh subprocess per utterance length (5 s ... 5 min, speech tiled to length) builds the
acoustic + opensmile + logmel extractors like a pipeline worker, extracts once, and reports its peak
RSS (``ru_maxrss``), the RSS after loading the models, the peak RSS of the extraction alone (the
kernel's high-water mark reset after loading; loading TensorFlow peaks higher than any extraction,
so ``ru_maxrss`` alone would hide growth) and the size of the extracted row.  Target: from 5 s to
5 min the extraction peak grows by < 50 MB beyond the row's own growth, with the default backends
(DisVoice 142 + log-mel).  The opt-in openSMILE backends are profiled too: their utterance-level
functionals hold the whole utterance inside openSMILE, so that profile grows (reported, documented).

When the shared speech is absent, generated harmonic "speech" bursts are used instead (the JSON says
which).  Run: ``python benchmarks/bench_acoustic.py [--out benchmarks/results] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from emoprep.extraction.config import AcousticConfig, ExtractConfig  # noqa: E402 - after the TF environment is set
from emoprep.extraction.media.audio import decode_audio  # noqa: E402 - after the TF environment is set
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia  # noqa: E402 - after the TF environment is set
from emoprep.extraction.records import Utterance  # noqa: E402 - after the TF environment is set

SPEECH = REPO.parent / "shared" / "data" / "speech-emotion"
SR = 16000


def generated_speech(seconds: float, seed: int) -> np.ndarray:
    """Harmonic bursts with a wandering f0: a stand-in for speech when the real files are absent."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 10))
    gate = ((t + rng.uniform(0, 0.4)) % 0.45) < 0.3
    return (0.3 * x * gate + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def load_audio() -> tuple[str, list[tuple[str, np.ndarray]]]:
    files = sorted(SPEECH.glob("*.wav")) if SPEECH.is_dir() else []
    if files:
        return "speech-emotion", [(f.name, decode_audio(f, 0.0, 1e6, SR)) for f in files]
    return "generated", [(f"gen{i:02d}", generated_speech(3.0, i)) for i in range(40)]


class ArrayMedia(UtteranceMedia):
    """Already-decoded audio (decode cost is not part of these figures)."""

    def __init__(self, audio: np.ndarray) -> None:
        super().__init__(Utterance("b", "bench", "v", 0.0, len(audio) / SR), MediaOptions(SR))
        self._audio = audio


def cpu_time(fn, items) -> float:
    t0 = time.process_time()
    for x in items:
        fn(x)
    return time.process_time() - t0


def speed(audio_s: float, cpu_s: float) -> dict:
    return {"audio_s": round(audio_s, 2), "cpu_s": round(cpu_s, 3), "x_realtime_per_core": round(audio_s / cpu_s, 1)}


def naive_static(chunks: list[np.ndarray]) -> float:
    """CPU seconds of DisVoice static Articulation + Phonological on each chunk file."""
    import contextlib
    import io

    from scipy.io.wavfile import write

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import disvoice

        art, phon = disvoice.Articulation(), disvoice.Phonological()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "chunk.wav")
        write(path, SR, np.round(chunks[0] * 32767).astype(np.int16))
        with contextlib.redirect_stdout(io.StringIO()):
            phon.extract_features_file(path, static=True)  # warm-up (Keras tracing)
        t0 = time.process_time()
        for c in chunks:
            write(path, SR, np.round(c * 32767).astype(np.int16))
            with contextlib.redirect_stdout(io.StringIO()):
                art.extract_features_file(path, static=True, fmt="npy")
                phon.extract_features_file(path, static=True, fmt="npy")
        return time.process_time() - t0


MEMORY_CHILD = r"""
import json, os, resource, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from emoprep.extraction.config import AcousticConfig, ExtractConfig
from emoprep.extraction.extractors import build_extractor
from emoprep.extraction.media.segment import MediaOptions, UtteranceMedia
from emoprep.extraction.records import Utterance
cfg = ExtractConfig(dataset="bench", modalities=("acoustic", "logmel"),
                    acoustic=AcousticConfig(backends=tuple(sys.argv[4].split(","))))
exts = [build_extractor(n, cfg) for n in ("acoustic", "opensmile", "logmel")]
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
after_init = rss_mb()
peak_init = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def hwm_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
seed = np.load(sys.argv[2])
n = int(float(sys.argv[3]) * 16000)
audio = np.resize(seed, n).astype(np.float32, copy=False)  # the decoded input exists before extraction
del seed
try:  # reset the kernel's peak-RSS mark, so the extraction peak is not hidden by model loading
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    resettable = True
except OSError:
    resettable = False
class M(UtteranceMedia):
    def __init__(self, a):
        super().__init__(Utterance("m", "bench", "v", 0.0, len(a) / 16000), MediaOptions())
        self._audio = a
media = M(audio)
out = {}
for e in exts:
    out.update(e.extract(media))
def nbytes(v):
    if isinstance(v, np.ndarray):
        return v.nbytes
    if isinstance(v, list):
        return sum(nbytes(x) for x in v)
    return 0
print(json.dumps({"rss_after_init_mb": round(after_init, 1), "peak_during_init_mb": round(peak_init, 1),
                  "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "extraction_peak_rss_mb": round(hwm_mb(), 1) if resettable else None,
                  "input_audio_mb": round(audio.nbytes / 2**20, 1),
                  "output_mb": round(sum(nbytes(v) for v in out.values()) / 2**20, 2),
                  "windows": int(out["acoustic"].shape[0]), "logmel_chunks": int(out["logmel"].shape[0])}))
"""


def memory_profile(seed_audio: np.ndarray, lengths: list[float], backends: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        seed_path = os.path.join(d, "seed.npy")
        np.save(seed_path, seed_audio)
        for length in lengths:
            proc = subprocess.run(
                [sys.executable, "-c", MEMORY_CHILD, str(REPO), seed_path, str(length), backends],
                capture_output=True, text=True, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
            if proc.returncode != 0:
                rows.append({"length_s": length, "error": proc.stderr[-2000:]})
                continue
            rows.append({"length_s": length, **json.loads(proc.stdout.strip().splitlines()[-1])})
            print(f"  memory {length:>5.0f} s: {rows[-1]}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--baseline-seconds", type=float, default=30.0, help="audio for the naive baseline")
    ap.add_argument("--quick", action="store_true", help="fewer memory lengths, 10 s baseline")
    args = ap.parse_args()
    if args.quick:
        args.baseline_seconds = min(args.baseline_seconds, 10.0)

    source, items = load_audio()
    audios = [a for _, a in items]
    total_s = sum(len(a) for a in audios) / SR
    print(f"audio: {source}, {len(audios)} utterances, {total_s:.1f} s", flush=True)
    result: dict = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "audio": {"source": source, "utterances": len(audios), "seconds": round(total_s, 2)},
        "throughput": {},
        "targets": {},
    }

    from emoprep.extraction.extractors.features142 import Features142
    from emoprep.extraction.extractors.logmel import LogmelComputer
    from emoprep.extraction.extractors.opensmile_lld import OpenSmileExtractor

    t0 = time.time()
    f142 = Features142(SR)
    result["disvoice142_init_wall_s"] = round(time.time() - t0, 2)
    f142.compute(audios[0])  # warm caches
    cpu = cpu_time(f142.compute, audios)
    result["throughput"]["disvoice142"] = speed(total_s, cpu)
    print("disvoice142", result["throughput"]["disvoice142"], flush=True)

    lm = LogmelComputer(ExtractConfig(dataset="bench").logmel, SR)
    lm.chunks(audios[0])
    result["throughput"]["logmel"] = speed(total_s, cpu_time(lm.chunks, audios))
    print("logmel", result["throughput"]["logmel"], flush=True)

    for backend in ("egemaps", "compare"):
        ext = OpenSmileExtractor(ExtractConfig(dataset="bench", acoustic=AcousticConfig(backends=(backend,))))
        ext.extract(ArrayMedia(audios[0]))
        result["throughput"][f"opensmile_{backend}"] = speed(total_s, cpu_time(lambda a, e=ext: e.extract(ArrayMedia(a)), audios))
        print(backend, result["throughput"][f"opensmile_{backend}"], flush=True)

    # naive baseline on a subset, and ours on exactly the same subset
    subset, acc = [], 0.0
    for a in audios:
        subset.append(a)
        acc += len(a) / SR
        if acc >= args.baseline_seconds:
            break
    chunks = [a[lo : lo + int(0.4 * SR)] for a in subset for lo in range(0, len(a), int(0.4 * SR))]
    chunks = [c for c in chunks if len(c) >= int(0.1 * SR)]  # emoprep drops tails < 0.1 s too
    chunk_s = sum(len(c) for c in chunks) / SR
    naive_cpu = naive_static(chunks)
    ours_subset = cpu_time(f142.compute, subset)
    result["throughput"]["naive_disvoice_static"] = {**speed(chunk_s, naive_cpu), "chunks": len(chunks)}
    result["throughput"]["disvoice142_same_subset"] = speed(acc, ours_subset)
    speedup = (acc / ours_subset) / (chunk_s / naive_cpu)
    result["speedup_vs_naive"] = round(speedup, 1)
    print("naive", result["throughput"]["naive_disvoice_static"], "speed-up", round(speedup, 1), flush=True)

    lengths = [5.0, 60.0, 300.0] if args.quick else [5.0, 30.0, 60.0, 150.0, 300.0]
    seed = np.concatenate(audios)

    def growth_of(rows: list[dict]) -> tuple[float | None, float | None]:
        ok = [r for r in rows if "ru_maxrss_mb" in r]
        if len(ok) < 2:
            return None, None
        def peak(r: dict) -> float:
            return r.get("extraction_peak_rss_mb") or r["ru_maxrss_mb"]

        first, last = min(ok, key=lambda r: r["length_s"]), max(ok, key=lambda r: r["length_s"])
        gross = peak(last) - peak(first)
        return round(gross, 1), round(gross - (last["output_mb"] - first["output_mb"]), 1)

    # The default configuration (DisVoice 142 + log-mel): what a pipeline worker runs by default.
    result["memory"] = memory_profile(seed, lengths, "disvoice")
    growth, net = growth_of(result["memory"])
    result["memory_peak_growth_mb_5s_to_5min"] = growth
    result["memory_peak_growth_net_of_output_mb_5s_to_5min"] = net
    # With the opt-in openSMILE backends as well: their LLD window means run in bounded blocks, but
    # openSMILE's utterance-level functionals need the whole utterance inside openSMILE (see
    # opensmile_lld.py), so this configuration grows with the length (reported, not a target).
    result["memory_with_opensmile"] = memory_profile(seed, [5.0, 60.0, 300.0], "disvoice,egemaps,compare")
    result["memory_with_opensmile_growth_net_of_output_mb_5s_to_5min"] = growth_of(result["memory_with_opensmile"])[1]

    x142 = result["throughput"]["disvoice142"]["x_realtime_per_core"]
    result["targets"] = {
        "disvoice142_realtime_x_per_core>=10": x142 >= 10,
        "speedup_vs_naive>=10": speedup >= 10,
        # "flat": beyond the output row itself (log-mel of 5 min = 5.9 MB), the extraction peak grows by
        # less than 50 MB from a 5 s to a 5 min utterance (default backends)
        "memory_flat(<50MB growth net of output 5s->5min)": net is not None and net < 50,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "acoustic.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
