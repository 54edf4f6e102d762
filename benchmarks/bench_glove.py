"""Benchmark the GloVe path: building the memory-mapped cache vs gensim's own text loader.

GloVe 840B is 2.2 M words x 300 dims (5.6 GB of text).  emoprep parses it once (pyarrow's CSV
reader) into a gensim ``KeyedVectors`` cache that every worker memory-maps.  This script writes a
synthetic GloVe file of ``--words`` words (same format: cased words, 300 values with 6 decimals;
without 840B's tokens-with-spaces, which gensim's loader cannot read at all — checked separately), then measures in one run:

* ``gensim_text``: the baseline, ``KeyedVectors.load_word2vec_format(no_header=True)``;
* ``emoprep_build``: checksum + parse + cache write (:func:`emoprep.glove.ensure_glove_cache`);
* ``emoprep_open``: opening the cache memory-mapped (what each worker pays per process);
* ``lookup``: tokens per second through :meth:`GloveVectors.lookup`;
* peak RSS of the build, in a fresh process (``ru_maxrss``).

Run: ``python benchmarks/bench_glove.py [--words 100000] [--out benchmarks/results]``.
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


def write_glove(path: Path, words: int, dim: int = 300, seed: int = 0, spaced_tokens: bool = False) -> None:
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"))
    with open(path, "w", encoding="utf-8") as f:
        for i in range(words):
            word = "".join(rng.choice(alphabet, size=rng.integers(2, 12))) + str(i)
            if spaced_tokens and i % 2 == 1:
                word = f"at name{i}@example.com"  # 840B has tokens with spaces inside
            f.write(word + " " + " ".join(f"{x:.6f}" for x in rng.normal(0, 0.4, dim)) + "\n")


def gensim_reads_spaced_tokens(tmp: Path) -> bool:
    """Whether gensim's text loader survives a GloVe-840B-style token with a space (it does not)."""
    from gensim.models import KeyedVectors

    path = tmp / "spaced.txt"
    write_glove(path, 4, spaced_tokens=True)
    try:
        KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)
        return True
    except ValueError:
        return False


BUILD = """
import resource, sys, time, os
os.environ["EMOPREP_CACHE"] = sys.argv[2]
from pathlib import Path
from emoprep.glove import ensure_glove_cache
t = time.perf_counter()
ensure_glove_cache(Path(sys.argv[1]))
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        glove = tmp / "glove.synthetic.300d.txt"
        write_glove(glove, args.words)
        size_mb = glove.stat().st_size / 1e6
        spaced_ok = gensim_reads_spaced_tokens(tmp)

        from gensim.models import KeyedVectors

        t = time.perf_counter()
        kv = KeyedVectors.load_word2vec_format(str(glove), binary=False, no_header=True)
        gensim_s = time.perf_counter() - t
        n_gensim = len(kv)
        del kv

        cache = tmp / "cache"
        run = subprocess.run([sys.executable, "-c", BUILD, str(glove), str(cache)], capture_output=True, text=True, check=True)
        build_s, build_rss_mb = map(float, run.stdout.split())

        os.environ["EMOPREP_CACHE"] = str(cache)
        from emoprep.glove import GloveVectors, ensure_glove_cache

        path = ensure_glove_cache(glove)
        t = time.perf_counter()
        gv = GloveVectors(path)
        open_s = time.perf_counter() - t
        keys = list(gv.index)[:: max(1, len(gv) // 20_000)]
        tokens = (keys + [k.upper() for k in keys] + ["zzzz-oov"] * 100) * 5
        t = time.perf_counter()
        _, oov = gv.lookup(tokens)
        lookup_s = time.perf_counter() - t

    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "file": {"words": args.words, "dim": 300, "text_mb": round(size_mb, 1)},
        "gensim_text_load_s": round(gensim_s, 2),
        "emoprep_cache_build_s": round(build_s, 2),
        "emoprep_cache_build_peak_rss_mb": round(build_rss_mb, 1),
        "emoprep_cache_open_s": round(open_s, 4),
        "build_speedup_vs_gensim": round(gensim_s / build_s, 1),
        "open_speedup_vs_gensim": round(gensim_s / open_s, 0),
        "lookup_tokens_per_s": round(len(tokens) / lookup_s),
        "gensim_reads_840B_spaced_tokens": spaced_ok,
        "vocabulary_gensim": n_gensim,
        "vocabulary_emoprep": len(gv),
        "oov_in_lookup": int(oov.sum()),
        "extrapolated_840B_build_min": round(build_s * 2_196_017 / args.words / 60, 1),
        "extrapolated_840B_gensim_min": round(gensim_s * 2_196_017 / args.words / 60, 1),
    }
    (args.out / "glove.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
