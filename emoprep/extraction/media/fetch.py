"""Media on object storage as local files: each worker downloads a recording once and decodes it from
its own disk.

PyAV/FFmpeg need a local file (they seek backwards, reopen MPEG program streams, and the visual path
keeps a container open across utterances), and a recording is cut into many utterances that land in
different tasks of the same worker.  So a media URL (``s3://bucket/v01.mp4``) becomes a local file in
exactly one place, :func:`local_media`, which every decode goes through
(:class:`~emoprep.extraction.media.segment.UtteranceMedia`); a local path passes through untouched, so
local runs behave as before and never import fsspec.

The cache is one folder per worker process (inside the Dask worker's own local directory, which Dask
removes when the worker closes; a temporary folder removed at exit elsewhere), bounded by
:attr:`MediaAccess.cache_bytes` with least-recently-used eviction.  The file just fetched is never
evicted, so the bound is exceeded by at most one recording larger than it.

Why not fsspec's ``simplecache::`` alone: it has no size bound, and a download that fails half way
leaves a file that the next open trusts.  This module is the part fsspec lacks: a download to a
temporary name and one rename (a cache entry is whole or absent), an LRU bound, and counters (tests
and ``benchmarks/bench_media_cache.py`` read them to check that a video is fetched once per worker).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import posixpath
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import MediaError, SetupError
from ...format.storage import filesystem, is_url, redact

CACHE_ENV = "EMOPREP_MEDIA_CACHE"
"""Default bound of each worker's media cache (``20GB``, ``500MB``, or bytes); ``--media-cache`` wins."""
DEFAULT_CACHE_BYTES = 10 * 2**30


@dataclass(frozen=True)
class MediaAccess:
    """How a run's workers reach media on object storage; travels with every task (small, picklable).

    ``options`` hold credentials: kept out of ``repr`` and never written anywhere."""

    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    cache_bytes: int = DEFAULT_CACHE_BYTES


@dataclass
class CacheStats:
    """What one process's cache did since it started."""

    directory: str
    downloads: int = 0
    downloaded_bytes: int = 0
    hits: int = 0
    evictions: int = 0
    held_bytes: int = 0
    entries: int = 0
    fetched: dict[str, int] = field(default_factory=dict)
    """Downloads per URL (credentials removed from the URL)."""


class MediaCache:
    """Whole-file copies of remote media in one local folder, least recently used evicted first."""

    def __init__(self, directory: Path, limit_bytes: int) -> None:
        self.directory = directory
        self.limit_bytes = limit_bytes
        self._entries: OrderedDict[str, tuple[Path, int]] = OrderedDict()
        self._lock = threading.Lock()  # a multi-threaded worker runs several tasks at once
        self.stats = CacheStats(str(directory))

    def local_file(self, url: str, options: Mapping[str, Any], stage: str) -> str:
        """The local copy of ``url`` (downloaded now if absent); a fetch failure is a MediaError at ``stage``."""
        with self._lock:
            entry = self._entries.get(url)
            if entry is not None and entry[0].exists():
                self._entries.move_to_end(url)
                self.stats.hits += 1
                return str(entry[0])
            path = self._download(url, options, stage)
            self._entries[url] = (path, path.stat().st_size)
            self._evict(keep=url)
            return str(path)

    def _download(self, url: str, options: Mapping[str, Any], stage: str) -> Path:
        fs, remote = filesystem(url, options)  # a missing backend: SetupError naming the extra
        name = hashlib.sha256(url.encode()).hexdigest()[:32] + posixpath.splitext(remote)[1]
        target = self.directory / name
        partial = self.directory / f".{name}.{os.getpid()}.{threading.get_ident()}.part"
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fs.get_file(remote, str(partial))
            os.replace(partial, target)
        except FileNotFoundError:
            raise MediaError(stage, f"media not found: {redact(url)}") from None
        except (OSError, ValueError) as exc:
            raise MediaError(stage, f"cannot fetch {redact(url)}: {type(exc).__name__}") from None
        finally:
            partial.unlink(missing_ok=True)
        size = target.stat().st_size
        self.stats.downloads += 1
        self.stats.downloaded_bytes += size
        shown = redact(url)
        self.stats.fetched[shown] = self.stats.fetched.get(shown, 0) + 1
        return target

    def _evict(self, keep: str) -> None:
        """Drop least recently used copies until the cache fits its bound (``keep`` stays)."""
        total = sum(size for _, size in self._entries.values())
        for url in list(self._entries):
            if total <= self.limit_bytes:
                break
            if url == keep:
                continue
            path, size = self._entries.pop(url)
            path.unlink(missing_ok=True)  # a container still open on it keeps reading (POSIX)
            total -= size
            self.stats.evictions += 1
        self.stats.held_bytes, self.stats.entries = total, len(self._entries)

    def clear(self) -> None:
        """Remove the folder and everything in it."""
        with self._lock:
            self._entries.clear()
            shutil.rmtree(self.directory, ignore_errors=True)


_CACHE: MediaCache | None = None


def _worker_directory() -> Path | None:
    """The Dask worker's local directory when this runs inside a worker (Dask removes it at close)."""
    try:
        from distributed import get_worker  # noqa: PLC0415
    except ImportError:
        return None
    try:
        return Path(get_worker().local_directory)
    except ValueError:  # not inside a worker (synchronous run, the driver)
        return None


def process_cache(limit_bytes: int = DEFAULT_CACHE_BYTES) -> MediaCache:
    """This process's media cache, made on first use (the latest run's bound applies)."""
    global _CACHE
    if _CACHE is None:
        worker_dir = _worker_directory()
        if worker_dir is not None:
            directory = Path(tempfile.mkdtemp(prefix="emoprep-media-", dir=worker_dir))
        else:
            directory = Path(tempfile.mkdtemp(prefix="emoprep-media-"))
        _CACHE = MediaCache(directory, limit_bytes)
        atexit.register(_CACHE.clear)
    _CACHE.limit_bytes = limit_bytes
    return _CACHE


def cache_stats() -> CacheStats | None:
    """This process's cache counters (None before any remote media was read); run on each worker."""
    if _CACHE is None:
        return None
    stats = _CACHE.stats
    stats.held_bytes = sum(size for _, size in _CACHE._entries.values())
    stats.entries = len(_CACHE._entries)
    return stats


def local_media(path: str, access: MediaAccess | None, stage: str) -> str:
    """``path`` as a local file to decode: local paths as they are, URLs through this process's cache."""
    if not is_url(path):
        return path
    access = access or MediaAccess()
    return process_cache(access.cache_bytes).local_file(path, access.options, stage)


def parse_cache_size(text: str | None, environ: Mapping[str, str] | None = None) -> int:
    """``--media-cache`` (or :data:`CACHE_ENV`) as bytes: ``20GB``, ``512MiB``, ``1000000``."""
    from dask.utils import parse_bytes  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    raw = text or environ.get(CACHE_ENV) or ""
    if not raw:
        return DEFAULT_CACHE_BYTES
    try:
        value = int(parse_bytes(raw))
    except (ValueError, TypeError):
        raise SetupError(f"media cache size {raw!r} is not a size (e.g. 20GB, 500MB)") from None
    if value <= 0:
        raise SetupError(f"media cache size must be positive, got {raw!r}")
    return value
