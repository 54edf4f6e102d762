"""Where outputs live: a local folder or a prefix on object storage, behind one small interface.

Every place emoprep reads or writes (``--out``, ``--root``, ``--shards``, run folders, GloVe, media)
may be a local path or an fsspec URL (``s3://bucket/prefix``, ``gs://``, ``memory://``, ``file://``).
:class:`Folder` offers exactly the operations the output contract needs, with the same guarantees on
both: a file is either absent or whole (local: temporary name + ``os.replace``; object storage: one
PUT of a finished local file), ``create_exclusive`` refuses to replace an existing file (local
``O_EXCL``; S3 ``If-None-Match: *``), and listing sees only finished files.

Local paths never go through fsspec, so a local run behaves (and writes bytes) exactly as before,
and a worker that only touches local files does not import fsspec or its backends.

Credentials travel as *storage options* (``--storage-option KEY=VALUE``, or the environment variable
:data:`STORAGE_OPTIONS_ENV`): they are held by the :class:`Folder` for its filesystem and never appear
in its ``repr``, its :attr:`Folder.url` or any message built from them, so they cannot reach
``manifest.json``, ``run.json``, logs or progress lines.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import SetupError
from .names import temporary_path

STORAGE_OPTIONS_ENV = "EMOPREP_STORAGE_OPTIONS"
"""Storage options from the environment: a JSON object, or whitespace-separated ``KEY=VALUE`` pairs;
``--storage-option`` flags are applied on top."""
SHA256_METADATA = "sha256"
"""The S3 user-metadata key (``x-amz-meta-sha256``) under which an uploaded shard carries the sha256
of its bytes, as checked before the upload: a resumed run lists the shard in its manifest without
downloading it to hash it."""

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")

_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}
"""URL scheme -> the ``pip install emoprep[...]`` extra that brings its backend."""


def is_url(location: str | Path) -> bool:
    """Whether ``location`` names object storage (any ``scheme://`` other than ``file://``)."""
    return isinstance(location, str) and bool(_URL.match(location)) and not location.startswith("file://")


def local_path(location: str | Path) -> Path:
    """``location`` as a local path (``file://`` URLs included)."""
    if isinstance(location, str) and location.startswith("file://"):
        return Path(urlsplit(location).path)
    return Path(location)


def redact(url: str) -> str:
    """``url`` without a ``user:password@`` part, the one place a URL itself can carry a secret."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _value(raw: str) -> Any:
    """A command-line value as JSON when it parses (numbers, booleans, objects), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_storage_options(pairs: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Storage options from :data:`STORAGE_OPTIONS_ENV` and ``KEY=VALUE`` pairs (later wins).

    A dotted key nests: ``client_kwargs.endpoint_url=http://localhost:9000`` gives
    ``{"client_kwargs": {"endpoint_url": ...}}``, the shape s3fs takes.  Values are JSON when they
    parse (``anon=true``), else strings.  Errors name the key, never the value (it may be a secret).
    """
    environ = os.environ if environ is None else environ
    items: list[str] = []
    from_env = environ.get(STORAGE_OPTIONS_ENV, "").strip()
    options: dict[str, Any] = {}
    if from_env.startswith("{"):
        try:
            loaded = json.loads(from_env)
        except ValueError:
            raise SetupError(f"{STORAGE_OPTIONS_ENV} is not a valid JSON object") from None
        if not isinstance(loaded, dict):
            raise SetupError(f"{STORAGE_OPTIONS_ENV} must be a JSON object")
        options.update(loaded)
    elif from_env:
        items += from_env.split()
    items += list(pairs)
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SetupError(f"a storage option must be KEY=VALUE; got one without '=' ({key or 'empty'!r})")
        node = options
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SetupError(f"storage option {key!r}: {part!r} is set both as a value and as a section")
        node[parts[-1]] = _value(raw)
    return options


def filesystem(url: str, options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it; a missing backend is a SetupError
    naming the extra to install."""
    import fsspec  # noqa: PLC0415  (only object storage needs it; local runs never import it)

    scheme = url.split("://", 1)[0].lower()
    try:
        return fsspec.core.url_to_fs(url, **dict(options or {}))
    except ImportError as exc:
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'emoprep[{extra}]'" if extra else f"install the fsspec backend for {scheme}://"
        raise SetupError(f"{redact(url)}: {scheme}:// needs a storage backend that is not installed ({hint})") from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise SetupError(f"{redact(url)}: {scheme}:// is not a storage scheme fsspec knows") from None
        raise


def _replace_whole(target: Path, fill: Callable[[Path], Any]) -> None:
    """Write ``target`` whole or not at all: ``fill`` writes a temporary name beside it, which is then
    renamed into place (and removed if anything failed)."""
    tmp = temporary_path(target)
    try:
        fill(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class Folder:
    """A folder of the output contract: a local directory or a prefix on object storage.

    Picklable (the options travel with it to Dask workers; the filesystem is rebuilt there)."""

    location: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    _fs: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.location = str(self.location).rstrip("/") if is_url(str(self.location)) else str(local_path(self.location))

    @classmethod
    def of(cls, location: str | Path | Folder, options: Mapping[str, Any] | None = None) -> Folder:
        """``location`` as a Folder (a Folder is returned as is)."""
        if isinstance(location, Folder):
            return location
        return cls(str(location), dict(options or {}))

    def __getstate__(self) -> dict[str, Any]:
        return {"location": self.location, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.location, self.options, self._fs = state["location"], state["options"], None

    def __str__(self) -> str:
        return self.url

    # --- what it is ----------------------------------------------------------------------------
    @property
    def remote(self) -> bool:
        return is_url(self.location)

    @property
    def local(self) -> Path | None:
        """The local directory, or None on object storage."""
        return None if self.remote else Path(self.location)

    @property
    def url(self) -> str:
        """How to show this folder to a person: the path or URL, never a credential."""
        return redact(self.location)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (object storage only)."""
        if self._fs is None:
            self._fs, _ = filesystem(self.location, self.options)
        return self._fs

    @property
    def _root(self) -> str:
        return self.fs._strip_protocol(self.location)

    def path(self, name: str) -> str:
        """The path of file ``name``: a local path, or the key path inside :attr:`fs`."""
        return str(Path(self.location) / name) if not self.remote else f"{self._root}/{name}"

    def display(self, name: str = "") -> str:
        """``name`` inside this folder, as shown to a person."""
        if not name:
            return self.url
        return str(Path(self.location) / name) if not self.remote else f"{self.url}/{name}"

    @property
    def name(self) -> str:
        """The folder's own name (the last part of its path or key prefix), as titles show it."""
        return self.location.rstrip("/").rsplit("/", 1)[-1] if self.remote else Path(self.location).name

    def child(self, name: str) -> Folder:
        """The sub-folder ``name`` (same options)."""
        location = str(Path(self.location) / name) if not self.remote else f"{self.location}/{name}"
        return Folder(location, self.options)

    # --- reading -------------------------------------------------------------------------------
    def exists(self, name: str = "") -> bool:
        """Whether file ``name`` exists (``""``: whether the folder exists or holds anything)."""
        if not self.remote:
            p = Path(self.location) / name
            return p.is_file() if name else p.is_dir()
        if not name:
            return bool(self.names())
        return bool(self.fs.isfile(self.path(name)))

    def names(self) -> list[str]:
        """The file names directly inside, sorted; empty when the folder does not exist."""
        if not self.remote:
            p = Path(self.location)
            return sorted(c.name for c in p.iterdir() if c.is_file()) if p.is_dir() else []
        try:
            entries = self.fs.ls(self._root, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rsplit("/", 1)[-1] for e in entries if e.get("type") == "file")

    def open(self, name: str, mode: str = "rb") -> IO[Any]:
        """An open file (read modes; writes go through :meth:`write_bytes` or :meth:`upload`)."""
        if not self.remote:
            return open(Path(self.location) / name, mode)
        return self.fs.open(self.path(name), mode)

    def read_bytes(self, name: str) -> bytes:
        if not self.remote:
            return (Path(self.location) / name).read_bytes()
        return bytes(self.fs.cat_file(self.path(name)))

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def size(self, name: str) -> int:
        if not self.remote:
            return (Path(self.location) / name).stat().st_size
        return int(self.fs.size(self.path(name)))

    def arrow(self) -> tuple[Any, str]:
        """``(pyarrow filesystem or None, base path)`` for pyarrow readers: ``pq.read_table(base +
        "/" + name, filesystem=fs)``; None means the local filesystem."""
        if not self.remote:
            return None, self.location
        import pyarrow.fs as pafs  # noqa: PLC0415

        return pafs.PyFileSystem(pafs.FSSpecHandler(self.fs)), self._root

    def files(self) -> list[str]:
        """Every file under the folder, sub-folders included, as ``/``-separated names relative to it,
        sorted (a run folder keeps ``evaluations/`` below it); empty when the folder does not exist."""
        if not self.remote:
            root = Path(self.location)
            return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        prefix = self._root + "/"
        return sorted(f[len(prefix):] for f in self.fs.find(self._root) if f.startswith(prefix))

    def download(self, name: str, local_file: Path) -> None:
        """Copy file ``name`` to ``local_file`` (its folder created), streamed, never held in memory whole."""
        local_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.remote:
            shutil.copyfile(Path(self.location) / name, local_file)
            return
        self.fs.get_file(self.path(name), str(local_file))

    def put(self, local_file: Path, name: str) -> None:
        """Copy a finished local file to ``name``, whole or not at all, keeping the local file (unlike
        :meth:`upload`, for a working copy that goes on changing): one PUT on object storage, a copy
        to a temporary name and a rename locally."""
        if not self.remote:
            target = Path(self.location) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace_whole(target, lambda tmp: shutil.copyfile(local_file, tmp))
            return
        self.fs.put_file(str(local_file), self.path(name))

    # --- writing -------------------------------------------------------------------------------
    def mkdir(self) -> None:
        """Create the folder (object storage has no folders: nothing to do there)."""
        if not self.remote:
            Path(self.location).mkdir(parents=True, exist_ok=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write file ``name`` whole or not at all (local: temporary name + ``os.replace``)."""
        if not self.remote:
            _replace_whole(Path(self.location) / name, lambda tmp: tmp.write_bytes(data))
            return
        self.fs.pipe_file(self.path(name), data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Create file ``name`` holding ``data`` only if it does not exist; False when it did.

        Local: ``O_CREAT | O_EXCL``.  S3: a conditional PUT (``If-None-Match: *``); other stores
        get fsspec's ``mode="create"``, which is exclusive where the backend supports it."""
        if not self.remote:
            try:
                fd = os.open(Path(self.location) / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        try:
            self.fs.pipe_file(self.path(name), data, mode="create")
        except FileExistsError:
            return False
        return True

    def upload(self, local_file: Path, name: str, *, exclusive: bool = False, sha256: str | None = None) -> None:
        """Move a finished local file to ``name``: one rename locally (same folder), one PUT on
        object storage, so ``name`` never holds a part of it.  ``exclusive``: refuse (FileExistsError)
        when ``name`` exists.  ``sha256``: the file's, kept with the object on S3 (user metadata of
        the same PUT) so that :meth:`recorded_sha256` answers without downloading it."""
        if not self.remote:
            target = Path(self.location) / name
            if exclusive and target.exists():
                raise FileExistsError(str(target))
            os.replace(local_file, target)
            return
        extra = {"Metadata": {SHA256_METADATA: sha256}} if sha256 and self._s3 else {}
        self.fs.put_file(str(local_file), self.path(name), mode="create" if exclusive else "overwrite", **extra)
        Path(local_file).unlink(missing_ok=True)

    @property
    def _s3(self) -> bool:
        """Whether the store is S3 (s3fs), whose objects carry user metadata."""
        if not self.remote:
            return False
        protocol = self.fs.protocol
        return bool(({protocol} if isinstance(protocol, str) else set(protocol)) & {"s3", "s3a"})

    def recorded_sha256(self, name: str) -> str | None:
        """The sha256 that :meth:`upload` kept with object ``name`` (S3), or None: a local file, another
        store, or an object put there some other way; the caller then hashes the file itself."""
        if not self._s3:
            return None
        try:
            value = self.fs.metadata(self.path(name)).get(SHA256_METADATA)
        except FileNotFoundError:
            return None
        return value if isinstance(value, str) and len(value) == 64 else None

    def remove(self, name: str) -> None:
        """Delete file ``name`` if it exists."""
        if not self.remote:
            (Path(self.location) / name).unlink(missing_ok=True)
            return
        try:
            self.fs.rm_file(self.path(name))
        except FileNotFoundError:
            pass

    def rmdir_if_empty(self) -> None:
        """Remove the local folder when it holds nothing (object storage has no empty folders)."""
        p = self.local
        if p is not None and p.is_dir() and not any(p.iterdir()):
            p.rmdir()


def join_url(base: str, relative: str) -> str:
    """``relative`` (``clip.mp4``, ``../v2/clip.mp4``) resolved against the URL prefix ``base``."""
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{posixpath.normpath(rest.rstrip('/') + '/' + relative)}"


@dataclass
class RemoteFile:
    """One file at a URL, with the few ``Path`` members readers of small metadata files use
    (``read_bytes``, ``is_file``, ``suffix``, ``name``, ``parent``), so a reader handles a list on
    object storage as it handles a local one.  ``str()`` is the URL without credentials."""

    url: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return redact(self.url)

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.name)[1]

    @property
    def parent(self) -> str:
        """The URL of the folder holding the file."""
        return self.url.rstrip("/").rsplit("/", 1)[0]

    def is_file(self) -> bool:
        fs, path = filesystem(self.url, self.options)
        return bool(fs.isfile(path))

    def read_bytes(self) -> bytes:
        fs, path = filesystem(self.url, self.options)
        return bytes(fs.cat_file(path))


def is_file(location: str | Path, options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``location`` (a local path or a URL) is an existing file."""
    if is_url(location):
        return RemoteFile(str(location), dict(options or {})).is_file()
    return local_path(location).is_file()
