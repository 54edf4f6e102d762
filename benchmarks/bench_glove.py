"""Benchmark the GloVe path: building the memory-mapped cache, its peak memory, and gensim's own loader.

GloVe 840B is 2,196,017 words x 300 dims (5.6 GB of text).  emoprep parses it once (pyarrow's CSV
reader) into a gensim ``KeyedVectors`` cache that every worker memory-maps.  This script writes a
synthetic GloVe file of ``--words`` words in 840B's format (cased words, 300 values with 5
decimals, so 2,196,017 words make a file of 840B's size; without 840B's tokens-with-spaces, which
gensim's loader cannot read at all — checked separately), then measures in one run:

* ``build``: checksum, then parse + cache write (:func:`emoprep.extraction.glove.ensure_glove_cache`), each in
  a fresh process, with that process's peak RSS (``VmHWM``) — the number a laptop cares about;
* ``baseline`` (``--baseline-ref REF``): the same for ``emoprep/extraction/glove.py`` as it was at git ``REF``,
  so that a change is measured against the code it replaces on the same file and machine, and
  whether both caches hold the same words and the same vector bytes;
* ``gensim_text`` (unless ``--skip-gensim``): ``KeyedVectors.load_word2vec_format(no_header=True)``;
* ``open``: opening the cache memory-mapped (what each worker pays per process);
* ``lookup``: tokens per second through :meth:`GloveVectors.lookup`.

Run: ``python benchmarks/bench_glove.py [--words 100000] [--baseline-ref HEAD] [--out benchmarks/results]``.
The full size (``--words 2196017 --skip-gensim``) needs ~6 GB of disk for the text and ~3 GB per
cache in ``--tmp``, and a few minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GLOVE_840B_WORDS = 2_196_017
ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", dtype=np.uint8)


def write_glove(path: Path, words: int, dim: int = 300, seed: int = 0, decimals: int = 5, chunk: int = 20_000) -> None:
    """A GloVe text file of ``words`` unique words with N(0, 0.4) values printed with ``decimals``.

    Lines are built as byte arrays, ``chunk`` rows at a time (formatting 660 M floats one by one in
    Python would take longer than the conversion being measured).  Each field has a fixed slot; a
    zero byte marks an unused position (a missing minus sign, the unused tail of a short word) and
    is dropped before writing.
    """
    rng = np.random.default_rng(seed)
    nd = len(str(max(words - 1, 0)))
    scale = 10**decimals
    with open(path, "wb") as f:
        for start in range(0, words, chunk):
            n = min(chunk, words - start)
            letters = ALPHABET[rng.integers(0, len(ALPHABET), (n, 11))]
            letters[np.arange(11) >= rng.integers(2, 12, n)[:, None]] = 0
            numbers = np.arange(start, start + n)[:, None]
            powers = 10 ** np.arange(nd - 1, -1, -1)
            digits = (ord("0") + numbers // powers % 10).astype(np.uint8)
            digits[(numbers < powers) & (powers > 1)] = 0  # no leading zeros: the word ends in its row number
            x = rng.normal(0, 0.4, (n, dim))
            k = np.minimum(np.rint(np.abs(x) * scale).astype(np.int64), 10 * scale - 1)
            cells = np.zeros((n, dim, decimals + 4), dtype=np.uint8)
            cells[..., 0] = np.where((x < 0) & (k > 0), ord("-"), 0)
            cells[..., 1] = ord("0") + k // scale
            cells[..., 2] = ord(".")
            for j in range(decimals):
                cells[..., 3 + j] = ord("0") + k // 10 ** (decimals - 1 - j) % 10
            cells[..., -1] = ord(" ")
            cells[:, -1, -1] = ord("\n")
            space = np.full((n, 1), ord(" "), dtype=np.uint8)
            lines = np.concatenate([letters, digits, space, cells.reshape(n, -1)], axis=1)
            f.write(lines[lines != 0].tobytes())


def gensim_reads_spaced_tokens(tmp: Path) -> bool:
    """Whether gensim's text loader survives a GloVe-840B-style token with a space (it does not)."""
    from gensim.models import KeyedVectors

    path = tmp / "spaced.txt"
    path.write_text("".join(f"at name{i}@example.com " + " ".join(["0.5"] * 300) + "\n" for i in range(2)))
    try:
        KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)
        return True
    except ValueError:
        return False


BUILD = """
import importlib.util, json, os, resource, sys, time
os.environ["EMOPREP_CACHE"] = sys.argv[2]
from pathlib import Path
if len(sys.argv) > 3:  # emoprep/extraction/glove.py of another commit, imported as a module of the package
    spec = importlib.util.spec_from_file_location("emoprep._glove_baseline", sys.argv[3])
    glove = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = glove
    spec.loader.exec_module(glove)
else:
    import emoprep.extraction.glove as glove
import gensim.models  # imported by the build anyway: its memory is not the build's
def rss():
    # Peak resident MiB of this process image.  Linux: VmHWM, which starts afresh at exec (ru_maxrss
    # may still hold the forking parent's size); elsewhere ru_maxrss (bytes on macOS, KiB on Linux).
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
rss_imports = rss()
t = time.perf_counter()
checksum = glove.file_checksum(Path(sys.argv[1]))
checksum_s = time.perf_counter() - t
t = time.perf_counter()
target = glove.ensure_glove_cache(Path(sys.argv[1]), checksum)
convert_s = time.perf_counter() - t
print(json.dumps({"checksum_s": checksum_s, "convert_s": convert_s, "peak_rss_mb": rss(),
                  "rss_after_imports_mb": rss_imports, "cache": str(target)}))
"""


def measure_build(glove: Path, cache: Path, module_file: Path | None = None) -> dict:
    """Checksum and conversion in a fresh process: its peak RSS is the conversion's, not this script's."""
    cmd = [sys.executable, "-c", BUILD, str(glove), str(cache)] + ([str(module_file)] if module_file else [])
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"cache build failed:\n{run.stderr}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    cache_dir = Path(result["cache"]).parent
    result["cache_mb"] = sum(p.stat().st_size for p in cache_dir.iterdir()) / 1e6
    return result


def cache_fingerprint(kv_file: Path) -> dict:
    """What must not change between two ways of building a cache: the words, in order, and the vector bytes."""
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load(str(kv_file), mmap="r")
    words = hashlib.sha256("\n".join(kv.index_to_key).encode()).hexdigest()
    h = hashlib.sha256()
    with open(f"{kv_file}.vectors.npy", "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return {"words": len(kv.index_to_key), "words_sha256": words, "vectors_npy_sha256": h.hexdigest()}


def _rounded(d: dict, digits: int = 2) -> dict:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in d.items() if k != "cache"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=100_000, help=f"words in the generated file (840B: {GLOVE_840B_WORDS})")
    ap.add_argument("--glove", type=Path, help="use this GloVe text file instead of generating one")
    ap.add_argument("--baseline-ref", help="also build with emoprep/extraction/glove.py as of this git commit, and compare")
    ap.add_argument("--skip-gensim", action="store_true", help="skip gensim's text loader (~17 min at 840B's size)")
    ap.add_argument("--tmp", type=Path, help="folder for the generated file and caches (default: the system's)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        glove = args.glove
        generate_s = None
        if glove is None:
            glove = tmp / "glove.synthetic.300d.txt"
            t = time.perf_counter()
            write_glove(glove, args.words)
            generate_s = time.perf_counter() - t
        size_mb = glove.stat().st_size / 1e6

        baseline = None
        if args.baseline_ref:
            old = subprocess.run(["git", "-C", str(REPO), "show", f"{args.baseline_ref}:emoprep/extraction/glove.py"],
                                 capture_output=True, text=True, check=True).stdout
            module_file = tmp / "glove_baseline.py"
            module_file.write_text(old)
            baseline = measure_build(glove, tmp / "cache-baseline", module_file)
            baseline["fingerprint"] = cache_fingerprint(Path(baseline["cache"]))
            shutil.rmtree(tmp / "cache-baseline")  # 2.6 GB at 840B's size

        cache = tmp / "cache"
        build = measure_build(glove, cache)
        build["fingerprint"] = cache_fingerprint(Path(build["cache"]))

        os.environ["EMOPREP_CACHE"] = str(cache)
        from emoprep.extraction.glove import GloveVectors

        t = time.perf_counter()
        gv = GloveVectors(Path(build["cache"]))
        open_s = time.perf_counter() - t
        keys = list(gv.index)[:: max(1, len(gv) // 20_000)]
        tokens = (keys + [k.upper() for k in keys] + ["zzzz-oov"] * 100) * 5
        t = time.perf_counter()
        _, oov = gv.lookup(tokens)
        lookup_s = time.perf_counter() - t
        words_emoprep = len(gv)
        del gv

        gensim_s = n_gensim = None
        spaced_ok = gensim_reads_spaced_tokens(tmp)
        if not args.skip_gensim:
            from gensim.models import KeyedVectors

            t = time.perf_counter()
            kv = KeyedVectors.load_word2vec_format(str(glove), binary=False, no_header=True)
            gensim_s = time.perf_counter() - t
            n_gensim = len(kv)
            del kv

    words = words_emoprep
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "file": {"words": words, "dim": 300, "text_mb": round(size_mb, 1),
                 "generated_s": round(generate_s, 1) if generate_s is not None else None},
        "build": _rounded({k: v for k, v in build.items() if k != "fingerprint"}),
        "cache_open_s": round(open_s, 4),
        "lookup_tokens_per_s": round(len(tokens) / lookup_s),
        "oov_in_lookup": int(oov.sum()),
        "gensim_reads_840B_spaced_tokens": spaced_ok,
        "extrapolated_840B_build_s": round((build["checksum_s"] + build["convert_s"]) * GLOVE_840B_WORDS / words, 1),
    }
    if baseline is not None:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.baseline_ref],
                                capture_output=True, text=True, check=True).stdout.strip()
        result["baseline"] = {"ref": args.baseline_ref, "commit": commit,
                              **_rounded({k: v for k, v in baseline.items() if k != "fingerprint"})}
        result["same_cache_as_baseline"] = baseline["fingerprint"] == build["fingerprint"]
        result["peak_rss_ratio_vs_baseline"] = round(build["peak_rss_mb"] / baseline["peak_rss_mb"], 3)
    if gensim_s is not None:
        result.update({
            "gensim_text_load_s": round(gensim_s, 2),
            "vocabulary_gensim": n_gensim,
            "build_speedup_vs_gensim": round(gensim_s / build["convert_s"], 1),
            "open_speedup_vs_gensim": round(gensim_s / open_s, 0),
        })
    (args.out / "glove.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
