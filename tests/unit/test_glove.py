import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from emoprep.errors import SetupError
from emoprep.extraction.glove import (
    GloveVectors,
    ensure_glove_cache,
    file_checksum,
    resolve_glove_path,
    stream_glove_text,
)


def parse_glove_text(path: Path) -> tuple[list[str], np.ndarray]:
    """Words and vectors of a small GloVe file, through the streaming parser the cache is built with."""
    blocks: list[np.ndarray] = []
    index = stream_glove_text(path, blocks.append)
    return list(index), np.concatenate(blocks)


def _write_glove(path: Path, rows: dict[str, np.ndarray], extra_lines: tuple[str, ...] = ()) -> None:
    lines = [w + " " + " ".join(f"{x:.5f}" for x in v) for w, v in rows.items()]
    lines += list(extra_lines)
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


@pytest.fixture
def vectors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    words = ["the", "Apple", "apple", ",", "n't", "don", "\"", "NULL", "nan"]
    return {w: rng.normal(size=300).astype(np.float32) for w in words}


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_parse_reads_every_word_and_value(tmp_path: Path, vectors: dict, suffix: str) -> None:
    path = tmp_path / f"g{suffix}"
    _write_glove(path, vectors)
    words, mat = parse_glove_text(path)
    assert words == list(vectors)  # 'NULL' and 'nan' stay words, not nulls
    np.testing.assert_allclose(mat, np.stack(list(vectors.values())), atol=1e-5)


def test_tokens_with_spaces_and_duplicates(tmp_path: Path, vectors: dict) -> None:
    """glove.840B has lines whose token contains spaces, and repeated words: keep the first vector."""
    odd = "at name@domain.com " + " ".join(["0.5"] * 300)
    dup = "the " + " ".join(["9.0"] * 300)
    path = tmp_path / "g.txt"
    _write_glove(path, vectors, (odd, dup))
    words, mat = parse_glove_text(path)
    assert "at name@domain.com" in words
    assert words.count("the") == 1
    np.testing.assert_allclose(mat[words.index("the")], vectors["the"], atol=1e-5)
    np.testing.assert_allclose(mat[words.index("at name@domain.com")], 0.5)


def test_word2vec_header_is_skipped(tmp_path: Path, vectors: dict) -> None:
    path = tmp_path / "w2v.txt"
    _write_glove(path, vectors)
    path.write_text(f"{len(vectors)} 300\n" + path.read_text())
    words, mat = parse_glove_text(path)
    assert words == list(vectors) and mat.shape == (len(vectors), 300)


def test_cache_is_built_once_and_keyed_by_content(tmp_path: Path, vectors: dict) -> None:
    path = tmp_path / "g.txt"
    _write_glove(path, vectors)
    first = ensure_glove_cache(path)
    mtime = first.stat().st_mtime_ns
    assert ensure_glove_cache(path) == first and first.stat().st_mtime_ns == mtime
    # Same name, other content: a different cache, never the stale one.
    changed = dict(vectors, the=np.ones(300, dtype=np.float32))
    _write_glove(path, changed)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    second = ensure_glove_cache(path)
    assert second != first
    np.testing.assert_allclose(GloveVectors(second).lookup(["the"])[0][0], 1.0)


def test_lookup_exact_then_lowercase_and_oov_mask(tmp_path: Path, vectors: dict) -> None:
    path = tmp_path / "g.txt"
    _write_glove(path, vectors)
    gv = GloveVectors(ensure_glove_cache(path))
    mat, oov = gv.lookup(["Apple", "APPLE", "The", "zzz"])
    np.testing.assert_allclose(mat[0], vectors["Apple"], atol=1e-5)  # exact case wins
    np.testing.assert_allclose(mat[1], vectors["apple"], atol=1e-5)  # falls back to lower case
    np.testing.assert_allclose(mat[2], vectors["the"], atol=1e-5)
    assert oov.tolist() == [False, False, False, True]
    assert not mat[3].any()
    assert mat.dtype == np.float32


def test_checksum_is_remembered(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("a 1\n")
    assert file_checksum(path) == file_checksum(path)
    import hashlib

    assert file_checksum(path) == hashlib.sha256(b"a 1\n").hexdigest()


def test_missing_file_is_an_actionable_setup_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SetupError, match="--glove"):
        resolve_glove_path(str(tmp_path / "nope.txt"))
    monkeypatch.setenv("EMOPREP_GLOVE", str(tmp_path / "nope.txt"))
    with pytest.raises(SetupError, match="EMOPREP_GLOVE"):
        resolve_glove_path(None)
    monkeypatch.delenv("EMOPREP_GLOVE")
    assert resolve_glove_path(None) is None


def test_real_glove_sample(shared) -> None:
    path = shared("glove", "glove.6B.300d.sample.txt.gz")
    gv = GloveVectors(ensure_glove_cache(path))
    assert len(gv) == 100 and gv.dim == 300
    mat, oov = gv.lookup(["the", "The", "of", "xylophone-zzz"])
    assert oov.tolist() == [False, False, False, True]
    np.testing.assert_allclose(mat[0], mat[1])  # glove.6B is lower-cased: 'The' falls back to 'the'
    assert np.linalg.norm(mat[0]) > 1.0


def test_invalid_utf8_in_a_word_does_not_abort_the_parse(tmp_path: Path, vectors: dict) -> None:
    path = tmp_path / "g.txt"
    _write_glove(path, vectors)
    bad = b"caf\xe9 " + " ".join(["0.25"] * 300).encode() + b"\n"  # latin-1 byte, not UTF-8
    path.write_bytes(path.read_bytes() + bad)
    words, mat = parse_glove_text(path)
    assert len(words) == len(vectors) + 1 and words[-1] == "caf\ufffd"
    np.testing.assert_allclose(mat[-1], 0.25)


def _quick_glove(path: Path, words: int, dim: int = 300, seed: int = 0, duplicates: int = 0) -> None:
    """A GloVe file whose values have one decimal (fast to write); the last ``duplicates`` lines
    repeat earlier words with other values."""
    rng = np.random.default_rng(seed)
    table = np.array([f"{v / 10:.1f}" for v in range(-9, 10)])
    with open(path, "w") as f:
        for i in range(words + duplicates):
            word = f"w{i}" if i < words else f"w{i - words}"
            f.write(word + " " + " ".join(table[rng.integers(0, len(table), dim)]) + "\n")


def test_cache_holds_what_gensims_own_text_loader_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamed over many blocks (with duplicates and a spaced token), the cache is gensim's reading of the
    text, and its .npy is byte for byte what np.save writes for that matrix."""
    from gensim.models import KeyedVectors

    from emoprep.extraction import glove

    monkeypatch.setattr(glove, "BLOCK_BYTES", 1 << 14)  # ~25 lines per block
    path = tmp_path / "g.txt"
    _quick_glove(path, 400, duplicates=30)
    expected = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)  # last duplicate wins
    with open(path, "a") as f:
        f.write("at name@domain.com " + " ".join(["0.5"] * 300) + "\n")
    kv = KeyedVectors.load(str(ensure_glove_cache(path)), mmap="r")
    assert kv.index_to_key == [f"w{i}" for i in range(400)] + ["at name@domain.com"]
    words, mat = parse_glove_text(path)
    assert words == kv.index_to_key and np.array_equal(mat, kv.vectors)
    # First occurrence kept: rows 0..369 have no duplicate and must equal gensim's (which keeps the last).
    np.testing.assert_array_equal(kv.vectors[:370], expected.vectors[[expected.key_to_index[f"w{i}"] for i in range(370)]])
    np.testing.assert_array_equal(kv.vectors[-1], 0.5)
    np.save(tmp_path / "ref.npy", mat)
    assert (tmp_path / "ref.npy").read_bytes() == Path(f"{ensure_glove_cache(path)}.vectors.npy").read_bytes()


def test_the_cache_build_never_holds_the_whole_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """840B's matrix is 2.6 GB: the build writes it as it parses (numpy's buffers are traced by tracemalloc)."""
    import tracemalloc

    from emoprep.extraction import glove

    monkeypatch.setattr(glove, "BLOCK_BYTES", 1 << 20)
    path = tmp_path / "g.txt"
    _quick_glove(path, 16_000)
    matrix_bytes = 16_000 * 300 * 4
    checksum = file_checksum(path)  # reads 16 MB chunks: not the conversion's memory
    _quick_glove(tmp_path / "warm-up.txt", 10)
    ensure_glove_cache(tmp_path / "warm-up.txt")  # the modules a build imports are not its memory
    tracemalloc.start()
    try:
        target = ensure_glove_cache(path, checksum)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.load(f"{target}.vectors.npy", mmap_mode="r").shape == (16_000, 300)
    assert peak < matrix_bytes / 2, f"peak {peak / 1e6:.1f} MB for a {matrix_bytes / 1e6:.1f} MB matrix"


def test_npy_appender_writes_what_np_save_writes(tmp_path: Path) -> None:
    from emoprep.extraction.glove import NpyAppender

    rng = np.random.default_rng(1)
    blocks = [rng.normal(size=(n, 7)).astype(np.float32) for n in (3, 0, 5)]
    with NpyAppender(tmp_path / "a.npy", 7) as out:
        for b in blocks:
            out.append(b)
        with pytest.raises(ValueError, match="rows of 7 values"):
            out.append(np.zeros((2, 6), dtype=np.float32))
    np.save(tmp_path / "b.npy", np.concatenate(blocks))
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
