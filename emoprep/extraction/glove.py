"""GloVe vectors: parse the text release once into a memory-mapped gensim cache, then look up fast.

``glove.840B.300d.txt`` is 5.6 GB and 2.2 M lines; gensim's own text loader needs ~17 minutes for it
and every Dask worker would need its own copy in RAM.  Instead the file is parsed once with
pyarrow's multi-threaded CSV reader (lines with spaces inside the token, which the 840B release has,
are caught by the invalid-row handler and parsed from the right), streamed block by block into the
files ``KeyedVectors.save`` writes (so the 2.6 GB matrix is never in memory whole), and opened by
every worker with ``mmap="r"`` — the OS page cache then shares one copy between them.

The cache is keyed by the file's sha256, so an edited or different file never reuses a stale cache;
the checksum itself is remembered per (path, size, mtime) so it is computed once per file.

``--glove`` may be a URL (``s3://bucket/glove.840B.300d.txt``): a cluster without a shared disk then
needs no copy on each machine.  Each machine that needs the vectors (the driver, and every worker
machine) streams the file once into its own cache (:func:`ensure_remote_glove`: download, sha256
checked against the run's, parse, download removed); the checksum of a URL is remembered per
(URL, size, ETag), so a rerun does not read the file again.

One process per machine builds a cache or downloads a file; the others wait for it and then read
its result (:func:`_one_process_per_machine`): a node with one Dask worker per core would otherwise
download the 5.6 GB file, and parse it, once per worker.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SetupError
from ..format.storage import filesystem, is_file, is_url, redact
from .cache import cache_dir

GLOVE_ENV = "EMOPREP_GLOVE"
BLOCK_BYTES = 1 << 22
"""Text per parsed block: small enough that pyarrow's blocks in flight stay ~150 MB (see stream_glove_text)."""


def resolve_glove_path(path: str | None, options: Mapping[str, Any] | None = None) -> Path | str | None:
    """The GloVe file from ``--glove`` or ``$EMOPREP_GLOVE`` (a path, or a URL kept as a string);
    None when neither is set.

    A path that is set but missing is an error *now*, before any work: a typo must not silently
    produce a run without vectors.
    """
    chosen = path or os.environ.get(GLOVE_ENV) or None
    if chosen is None:
        return None
    if is_url(chosen):
        if not is_file(chosen, options):
            source = "--glove" if path else f"${GLOVE_ENV}"
            raise SetupError(f"GloVe file not found: {redact(chosen)} (from {source}); check the URL and the "
                             "--storage-option credentials, or drop the option to write tokens without vectors.")
        return chosen
    p = Path(chosen).expanduser()
    if not p.is_file():
        source = "--glove" if path else f"${GLOVE_ENV}"
        raise SetupError(
            f"GloVe file not found: {p} (from {source}). Download glove.840B.300d.zip from "
            "https://nlp.stanford.edu/projects/glove/, unzip it, and pass the .txt path with --glove "
            f"or set {GLOVE_ENV}; or drop the option to write tokens without vectors."
        )
    return p


def _remembered_checksums() -> dict[str, str]:
    try:
        return json.loads((cache_dir() / "checksums.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _remember_checksum(key: str, checksum: str) -> None:
    index_path = cache_dir() / "checksums.json"
    index = _remembered_checksums()
    index[key] = checksum
    index_path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own for each writer (processes and threads): the last whole index wins; an entry
    # lost to a concurrent writer is only computed again
    fd, tmp = tempfile.mkstemp(prefix=".checksums-", suffix=".tmp", dir=index_path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(index, indent=0))
    os.replace(tmp, index_path)


def file_checksum(path: Path) -> str:
    """sha256 of ``path``, remembered in the cache per (real path, size, mtime)."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    known = _remembered_checksums().get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    _remember_checksum(key, h.hexdigest())
    return h.hexdigest()


def _cache_target(checksum: str) -> Path:
    return cache_dir() / "glove" / checksum[:24] / "vectors.kv"


@contextmanager
def _one_process_per_machine(subject: str) -> Iterator[None]:
    """Hold this machine's lock for ``subject`` (a file lock in the cache folder, so every process
    that shares the cache waits for it); the caller checks again, inside, for what the holder before
    it made.  The operating system releases the lock of a process that dies.  On a filesystem that
    refuses locks (some network mounts) every process goes on alone, as without the lock: slower,
    never wrong (caches and downloads are put in place by one rename each)."""
    from filelock import FileLock

    locks = cache_dir() / "glove" / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(locks / f"{hashlib.sha256(subject.encode()).hexdigest()[:24]}.lock")
    try:
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def ensure_remote_glove(url: str, options: Mapping[str, Any] | None = None,
                        checksum: str | None = None) -> tuple[Path, str]:
    """``(cache file, sha256)`` of the GloVe file at ``url``, fetched once into this machine's cache.

    Known checksum (the run's, on a worker) and a cache for it: nothing is read.  Otherwise the file
    is streamed to a temporary file beside the cache while it is hashed, checked against
    ``checksum`` (a file replaced during the run is refused), parsed, and removed."""
    if checksum and _cache_target(checksum).is_file():
        return _cache_target(checksum), checksum
    fs, key = filesystem(url, options)
    info = fs.info(key)
    remembered = f"{redact(url)}|{info.get('size')}|{info.get('ETag') or info.get('LastModified') or ''}"
    with _one_process_per_machine(remembered):  # the first downloads; the others find its cache
        checksum = checksum or _remembered_checksums().get(remembered)
        if checksum and _cache_target(checksum).is_file():
            return _cache_target(checksum), checksum
        return _download(fs, key, url, remembered, checksum)


def _download(fs: Any, key: str, url: str, remembered: str, checksum: str | None) -> tuple[Path, str]:
    """Stream ``key`` to a temporary file beside the cache while hashing it, check it against
    ``checksum``, remember its sha256 under ``remembered``, build its cache; the download is removed."""
    (cache_dir() / "glove").mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=_suffix(key), dir=cache_dir() / "glove")
    download = Path(name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, fs.open(key, "rb", block_size=1 << 24) as remote:
            for block in iter(lambda: remote.read(1 << 24), b""):
                h.update(block)
                out.write(block)
        if checksum and h.hexdigest() != checksum:
            raise SetupError(f"GloVe file {redact(url)} changed during the run (sha256 {h.hexdigest()[:12]}..., "
                             f"the run uses {checksum[:12]}...); rerun to use the new file")
        _remember_checksum(remembered, h.hexdigest())
        return ensure_glove_cache(download, h.hexdigest()), h.hexdigest()
    finally:
        download.unlink(missing_ok=True)


def _suffix(key: str) -> str:
    """``.gz`` of ``bucket/glove.txt.gz``: kept on the download, pyarrow detects compression by it."""
    return os.path.splitext(key)[1]


def _first_line(path: Path) -> str:
    import pyarrow as pa

    with pa.input_stream(str(path), compression="detect") as stream:
        head = stream.read(1 << 16).decode("utf-8", errors="replace")
    return head.split("\n", 1)[0]


def _layout(path: Path) -> tuple[int, bool]:
    """``(dim, has_header)`` of a GloVe file, or of a word2vec text file with its ``count dim`` line."""
    first = _first_line(path).rstrip("\r").split(" ")
    has_header = len(first) == 2 and all(x.isdigit() for x in first)
    dim = int(first[1]) if has_header else len(first) - 1
    if dim < 1:
        raise SetupError(f"{path} does not look like a GloVe text file (first line: {' '.join(first)[:80]!r})")
    return dim, has_header


def stream_glove_text(path: Path, sink: Callable[[np.ndarray], None]) -> dict[str, int]:
    """Parse a GloVe text file block by block, handing each block of new vectors to ``sink``.

    Returns ``{word: row}`` in file order; row ``i`` is the ``i``-th row handed to ``sink``.  Duplicate
    words keep their first vector (840B repeats a few); lines whose token holds spaces (840B has
    those too) come last.  The text is parsed in 4 MB blocks, of which pyarrow keeps a few dozen in
    flight (~150 MB; 16 MB blocks held ~600 MB and parsed no faster), so a caller that writes the
    blocks out never holds the whole matrix (2.6 GB for 840B).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    dim, has_header = _layout(path)
    names = ["word"] + [f"v{i}" for i in range(dim)]
    odd_lines: list[str] = []

    def on_invalid(row) -> str:  # row: a pyarrow InvalidRow
        odd_lines.append(row.text)
        return "skip"

    read_opts = pcsv.ReadOptions(column_names=names, skip_rows=1 if has_header else 0, block_size=BLOCK_BYTES)
    parse_opts = pcsv.ParseOptions(
        delimiter=" ", quote_char=False, escape_char=False, double_quote=False, invalid_row_handler=on_invalid
    )
    conv_opts = pcsv.ConvertOptions(
        # binary, not string: one invalid UTF-8 byte in 5.6 GB must not abort the parse
        column_types={"word": pa.binary(), **{n: pa.float32() for n in names[1:]}},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    index: dict[str, int] = {}

    def add(words: list[str], block: np.ndarray) -> None:
        keep = []
        for i, w in enumerate(words):
            if w not in index:
                index[w] = len(index)
                keep.append(i)
        if len(keep) != len(words):
            block = block[keep]
        if len(block):
            sink(block)

    with pa.input_stream(str(path), compression="detect") as stream:
        reader = pcsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts)
        for batch in reader:
            block = np.empty((batch.num_rows, dim), dtype=np.float32)
            for i in range(dim):
                block[:, i] = batch.column(i + 1).to_numpy()
            add([w.decode("utf-8", errors="replace") for w in batch.column(0).to_pylist()], block)
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
        add(extra_words, np.stack(extra_vecs))
    return index


class NpyAppender:
    """A ``.npy`` file written row block by row block, its header (with the row count) last.

    The header's space is reserved up front: numpy pads it to 64 bytes, and the padded length is the
    same for every int64 row count, so the finished file is byte for byte what ``np.save`` writes.
    Plain writes, not a memory map: mapped pages would count in the process's resident memory.
    """

    def __init__(self, path: Path, dim: int, dtype: type = np.float32) -> None:
        self.path, self.dim, self.dtype, self.rows = path, dim, np.dtype(dtype), 0
        self._reserved = len(self._header(np.iinfo(np.int64).max))
        self._file = open(path, "wb")  # noqa: SIM115 - open across append() calls; closed by close()
        self._file.write(b"\0" * self._reserved)

    def _header(self, rows: int) -> bytes:
        buf = io.BytesIO()
        descr = np.lib.format.dtype_to_descr(self.dtype)
        np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": (rows, self.dim)})
        return buf.getvalue()

    def append(self, block: np.ndarray) -> None:
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"expected rows of {self.dim} values, got an array of shape {block.shape}")
        self._file.write(np.ascontiguousarray(block, dtype=self.dtype).data)
        self.rows += len(block)

    def close(self) -> None:
        """Write the header for the rows appended so far and close the file."""
        header = self._header(self.rows)
        if len(header) != self._reserved:  # cannot happen for int64 row counts; never write a bad file
            raise RuntimeError(f".npy header of {len(header)} bytes does not fit the {self._reserved} reserved")
        self._file.seek(0)
        self._file.write(header)
        self._file.close()

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._file.close()


def ensure_glove_cache(path: Path | str, checksum: str | None = None) -> Path:
    """Build (once) and return the gensim cache file of the GloVe file ``path`` (a URL: fetched
    through :func:`ensure_remote_glove`, with the credentials of the environment).

    The vectors are streamed into the cache's ``.npy`` as they are parsed, so the peak memory is
    the vocabulary (words and their index, ~0.5 GB for 840B), not the 2.6 GB matrix on top of it.
    The files are what ``KeyedVectors.save`` writes, so gensim opens them as before.
    """
    if is_url(str(path)):
        return ensure_remote_glove(str(path), None, checksum)[0]  # its cache, when there, is returned unread
    path = Path(path)
    checksum = checksum or file_checksum(path)
    target = _cache_target(checksum)
    if target.is_file():
        return target
    with _one_process_per_machine(checksum):  # the first builds it; the others find it built
        if not target.is_file():
            _build_cache(path, checksum, target.parent)
    return target


def _build_cache(path: Path, checksum: str, target_dir: Path) -> None:
    """Parse ``path`` into a new cache folder and rename it to ``target_dir`` in one step."""
    from gensim.models import KeyedVectors

    dim, _ = _layout(path)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".building-", dir=target_dir.parent))
    try:
        with NpyAppender(tmp_dir / "vectors.partial.npy", dim) as matrix:
            index = stream_glove_text(path, matrix.append)
        if not index:
            raise SetupError(f"no vectors could be read from GloVe file {path}")
        kv = KeyedVectors(vector_size=dim, count=0, dtype=np.float32)
        kv.index_to_key = list(index)
        kv.key_to_index = index
        # gensim stores `vectors` in its own .npy beside the pickle; a 0-row stand-in is saved
        # there and then replaced by the streamed matrix (same file name, same format).
        kv.vectors = np.empty((0, dim), dtype=np.float32)
        kv.save(str(tmp_dir / "vectors.kv"), sep_limit=0)
        os.replace(tmp_dir / "vectors.partial.npy", tmp_dir / "vectors.kv.vectors.npy")
        (tmp_dir / "source.json").write_text(json.dumps({"file": str(path), "sha256": checksum, "words": len(index)}))
        try:
            os.rename(tmp_dir, target_dir)
        except OSError:  # another process finished first: theirs is as good as ours
            shutil.rmtree(tmp_dir, ignore_errors=True)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)


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
