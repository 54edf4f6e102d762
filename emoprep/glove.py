"""GloVe vectors: parse the text release once into a memory-mapped gensim cache, then look up fast.

``glove.840B.300d.txt`` is 5.6 GB and 2.2 M lines; gensim's own text loader needs ~17 minutes for it
and every Dask worker would need its own copy in RAM.  Instead the file is parsed once with
pyarrow's multi-threaded CSV reader (lines with spaces inside the token, which the 840B release has,
are caught by the invalid-row handler and parsed from the right), stored with ``KeyedVectors.save``,
and opened by every worker with ``mmap="r"`` — the OS page cache then shares one copy between them.

The cache is keyed by the file's sha256, so an edited or different file never reuses a stale cache;
the checksum itself is remembered per (path, size, mtime) so it is computed once per file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import cache_dir
from .errors import SetupError

GLOVE_ENV = "EMOPREP_GLOVE"


def resolve_glove_path(path: str | None) -> Path | None:
    """The GloVe file from ``--glove`` or ``$EMOPREP_GLOVE``; None when neither is set.

    A path that is set but missing is an error *now*, before any work: a typo must not silently
    produce a run without vectors.
    """
    chosen = path or os.environ.get(GLOVE_ENV) or None
    if chosen is None:
        return None
    p = Path(chosen).expanduser()
    if not p.is_file():
        source = "--glove" if path else f"${GLOVE_ENV}"
        raise SetupError(
            f"GloVe file not found: {p} (from {source}). Download glove.840B.300d.zip from "
            "https://nlp.stanford.edu/projects/glove/, unzip it, and pass the .txt path with --glove "
            f"or set {GLOVE_ENV}; or drop the option to write tokens without vectors."
        )
    return p


def file_checksum(path: Path) -> str:
    """sha256 of ``path``, remembered in the cache per (real path, size, mtime)."""
    st = path.stat()
    index_path = cache_dir() / "checksums.json"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    try:
        index = json.loads(index_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        index = {}
    if key in index:
        return index[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    index[key] = h.hexdigest()
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(index, indent=0))
    os.replace(tmp, index_path)
    return index[key]


def _first_line(path: Path) -> str:
    import pyarrow as pa

    with pa.input_stream(str(path), compression="detect") as stream:
        head = stream.read(1 << 16).decode("utf-8", errors="replace")
    return head.split("\n", 1)[0]


def parse_glove_text(path: Path) -> tuple[list[str], np.ndarray]:
    """Words and float32 vectors of a GloVe (or headered word2vec) text file, ``.gz`` allowed.

    Duplicate words keep their first vector (840B repeats a few).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    first = _first_line(path).rstrip("\r").split(" ")
    has_header = len(first) == 2 and all(x.isdigit() for x in first)
    if has_header:
        dim = int(first[1])
    else:
        dim = len(first) - 1
    if dim < 1:
        raise SetupError(f"{path} does not look like a GloVe text file (first line: {' '.join(first)[:80]!r})")
    names = ["word"] + [f"v{i}" for i in range(dim)]
    odd_lines: list[str] = []

    def on_invalid(row) -> str:  # noqa: ANN001 - pyarrow InvalidRow
        odd_lines.append(row.text)
        return "skip"

    read_opts = pcsv.ReadOptions(column_names=names, skip_rows=1 if has_header else 0, block_size=1 << 24)
    parse_opts = pcsv.ParseOptions(
        delimiter=" ", quote_char=False, escape_char=False, double_quote=False, invalid_row_handler=on_invalid
    )
    conv_opts = pcsv.ConvertOptions(
        # binary, not string: one invalid UTF-8 byte in 5.6 GB must not abort the parse
        column_types={"word": pa.binary(), **{n: pa.float32() for n in names[1:]}},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    # Streamed in 16 MB blocks: the parsed text never sits in memory whole (840B is 5.6 GB).
    words: list[str] = []
    blocks: list[np.ndarray] = []
    with pa.input_stream(str(path), compression="detect") as stream:
        reader = pcsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts)
        for batch in reader:
            words.extend(w.decode("utf-8", errors="replace") for w in batch.column(0).to_pylist())
            block = np.empty((batch.num_rows, dim), dtype=np.float32)
            for i in range(dim):
                block[:, i] = batch.column(i + 1).to_numpy()
            blocks.append(block)
    vectors = np.concatenate(blocks) if blocks else np.empty((0, dim), dtype=np.float32)
    del blocks
    extra_words, extra_vecs = [], []
    for line in odd_lines:
        parts = line.rstrip("\r\n").rsplit(" ", dim)
        if len(parts) != dim + 1:
            continue  # a truncated line: nothing trustworthy to keep
        try:
            extra_vecs.append(np.asarray(parts[1:], dtype=np.float32))
        except ValueError:
            continue
        extra_words.append(parts[0])
    if extra_words:
        words.extend(extra_words)
        vectors = np.concatenate([vectors, np.stack(extra_vecs)])
    seen: dict[str, int] = {}
    keep = []
    for i, w in enumerate(words):
        if w not in seen:
            seen[w] = i
            keep.append(i)
    if len(keep) != len(words):
        words = [words[i] for i in keep]
        vectors = vectors[keep]
    return words, vectors


def ensure_glove_cache(path: Path, checksum: str | None = None) -> Path:
    """Build (once) and return the gensim cache file of the GloVe file ``path``."""
    checksum = checksum or file_checksum(path)
    target_dir = cache_dir() / "glove" / checksum[:24]
    target = target_dir / "vectors.kv"
    if target.is_file():
        return target
    from gensim.models import KeyedVectors

    words, vectors = parse_glove_text(path)
    if not words:
        raise SetupError(f"no vectors could be read from GloVe file {path}")
    # Hand the arrays to gensim as they are (add_vectors would copy 2.6 GB for 840B once more).
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    kv.index_to_key = words
    kv.key_to_index = {w: i for i, w in enumerate(words)}
    kv.vectors = vectors
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".building-", dir=target_dir.parent))
    try:
        kv.save(str(tmp_dir / "vectors.kv"), sep_limit=0)  # vectors in their own .npy: mmap-able
        (tmp_dir / "source.json").write_text(json.dumps({"file": str(path), "sha256": checksum, "words": len(words)}))
        try:
            os.rename(tmp_dir, target_dir)
        except OSError:  # another process finished first: theirs is as good as ours
            shutil.rmtree(tmp_dir, ignore_errors=True)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return target


@dataclass
class GloveVectors:
    """Read-only, memory-mapped vectors with the exact-then-lowercase lookup of emoprep's text column."""

    path: Path

    def __post_init__(self) -> None:
        from gensim.models import KeyedVectors

        self.kv = KeyedVectors.load(str(self.path), mmap="r")
        self.index = self.kv.key_to_index
        self.dim = int(self.kv.vector_size)

    def __len__(self) -> int:
        return len(self.index)

    def lookup(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors [n, dim] float32, oov [n] bool)``; OOV tokens get a zero vector."""
        rows = np.zeros((len(tokens), self.dim), dtype=np.float32)
        oov = np.ones(len(tokens), dtype=bool)
        for i, tok in enumerate(tokens):
            j = self.index.get(tok)
            if j is None:
                j = self.index.get(tok.lower())
            if j is not None:
                rows[i] = self.kv.vectors[j]
                oov[i] = False
        return rows, oov
