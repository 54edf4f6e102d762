"""``manifest.json``: a shard folder's table of contents, as a typed record with one way in and one out.

The manifest is written last, so its presence means the run is complete; a reader that finds none must
treat the folder as unfinished.  It lists each shard with rows, bytes and sha256, the configuration and
its hash, every extractor's backend and versions, per-split and per-column counts, and the text OOV
rate.

Every module reads it through :func:`read_manifest` and gets a :class:`Manifest`, so a key is spelled
in one place and a default for a field that older emoprep versions did not write is chosen once
(:meth:`Manifest.from_dict`).  Extraction and :mod:`emoprep.testing` write it through
:func:`write_manifest`; :meth:`Manifest.to_dict` keeps the key order of the files already published.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .codecs import LOGMEL_FRAMES, LOGMEL_MELS
from .files import json_text, write_json_atomic
from .names import FAILURES, MANIFEST, UTTERANCES
from .storage import Folder, is_url, local_path

READER_COUNT_PREFIX = "reader."
"""Counts a dataset reader reported, stored flat in ``counts`` as ``reader.<name>``."""
DEFAULT_FACE_SIZE = 48
"""The face crop side when a manifest does not record one (the extractor's default, the paper's)."""


@dataclass(frozen=True)
class ShardEntry:
    """One shard file as the manifest lists it."""

    file: str
    split: str
    rows: int
    bytes: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class TextSummary:
    """What the text extractor wrote: the GloVe file (by name and checksum) and the OOV counts."""

    glove: str | None = None
    glove_sha256: str | None = None
    vectors_written: bool = False
    tokens: int = 0
    oov_tokens: int | None = None
    oov_rate: float | None = None


@dataclass(frozen=True)
class Counts:
    """The run's counts: utterances, rows per split and per column, failures, the reader's issues."""

    utterances: int = 0
    rows_per_split: dict[str, int] = field(default_factory=dict)
    non_null_per_column: dict[str, int] | None = None
    """Rows with a value per column over all shards; None in manifests of emoprep before it was kept."""
    failures: int = 0
    failed_utterances: int = 0
    reader_issues: dict[str, int] = field(default_factory=dict)
    differences_from_full_release: Any = None
    """``{key: {"read", "full_release"}}``; older manifests hold a list of sentences
    (:func:`emoprep.format.release_counts.describe_manifest_differences` reads both)."""
    reader: dict[str, Any] = field(default_factory=dict)
    """The dataset reader's own counts (``reader.<name>`` in the file)."""

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "reader"}
        if out["non_null_per_column"] is None:
            del out["non_null_per_column"]
        return {**out, **{f"{READER_COUNT_PREFIX}{k}": v for k, v in self.reader.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Counts:
        known = {f.name for f in fields(cls)} - {"reader"}
        reader = {k[len(READER_COUNT_PREFIX):]: v for k, v in d.items() if k.startswith(READER_COUNT_PREFIX)}
        return cls(**{k: v for k, v in d.items() if k in known}, reader=reader)

    def present(self, column: str) -> bool:
        """Whether any row has a value in ``column`` (True when the manifest does not say)."""
        return bool((self.non_null_per_column or {}).get(column, 1))


@dataclass(frozen=True)
class Manifest:
    """The content of ``manifest.json``."""

    dataset: str
    config_hash: str
    schema_version: int = 1
    emoprep_version: str = "unknown"
    created: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    """The extraction configuration that was hashed (:meth:`emoprep.extraction.config.ExtractConfig.hashed_dict`)."""
    label_names: tuple[str, ...] = ()
    modalities: dict[str, bool] = field(default_factory=dict)
    backends: dict[str, Any] = field(default_factory=dict)
    text: TextSummary = field(default_factory=TextSummary)
    counts: Counts = field(default_factory=Counts)
    shards: tuple[ShardEntry, ...] = ()
    files: dict[str, str] = field(default_factory=lambda: {"utterances": UTTERANCES, "failures": FAILURES})
    extra: dict[str, Any] = field(default_factory=dict)
    """Top-level keys this emoprep does not know (written by a newer one): kept, written back."""

    # --- what consumers ask of it ---------------------------------------------------------------------

    def shards_of(self, split: str | None = None) -> tuple[ShardEntry, ...]:
        """The shards of ``split`` (all when None), in the manifest's order."""
        return tuple(s for s in self.shards if split is None or s.split == split)

    @property
    def splits(self) -> set[str]:
        """Splits with at least one row."""
        return {s.split for s in self.shards if s.rows}

    @property
    def total_bytes(self) -> int:
        return sum(s.bytes or 0 for s in self.shards)

    @property
    def face_size(self) -> int:
        """The side of a stored face crop, in pixels."""
        return int((self.config.get("visual") or {}).get("face_size", DEFAULT_FACE_SIZE))

    @property
    def logmel_shape(self) -> tuple[int, int]:
        """``(mels, frames)`` of one stored log-mel chunk."""
        logmel = self.config.get("logmel") or {}
        return int(logmel.get("n_mels", LOGMEL_MELS)), int(logmel.get("chunk_frames", LOGMEL_FRAMES))

    @property
    def failures_file(self) -> str:
        return self.files.get("failures", FAILURES)

    # --- the file -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the order emoprep has always written them."""
        return {
            "schema_version": self.schema_version,
            "emoprep_version": self.emoprep_version,
            "dataset": self.dataset,
            "created": self.created,
            "config_hash": self.config_hash,
            "config": self.config,
            "label_names": list(self.label_names),
            "modalities": self.modalities,
            "backends": self.backends,
            "text": {f.name: getattr(self.text, f.name) for f in fields(TextSummary)},
            "counts": self.counts.to_dict(),
            "shards": [{f.name: getattr(s, f.name) for f in fields(ShardEntry)} for s in self.shards],
            "files": self.files,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """A manifest of any emoprep version: a field an older one did not write takes its default."""
        known = {f.name for f in fields(cls)}
        text = d.get("text") or {}
        return cls(
            dataset=d.get("dataset", "unknown"),
            config_hash=d.get("config_hash", ""),
            schema_version=int(d.get("schema_version", 1)),
            emoprep_version=str(d.get("emoprep_version", "unknown")),
            created=d.get("created"),
            config=d.get("config") or {},
            label_names=tuple(d.get("label_names") or ()),
            modalities=d.get("modalities") or {},
            backends=d.get("backends") or {},
            text=TextSummary(**{f.name: text[f.name] for f in fields(TextSummary) if f.name in text}),
            counts=Counts.from_dict(d.get("counts") or {}),
            shards=tuple(ShardEntry(**{f.name: s.get(f.name) for f in fields(ShardEntry)}) for s in d.get("shards", [])),
            files=d.get("files") or {"utterances": UTTERANCES, "failures": FAILURES},
            extra={k: v for k, v in d.items() if k not in known},
        )


StorageOptions = Mapping[str, Any] | None
"""Options of the object store behind a URL (credentials, endpoint); ignored for a local path."""


def shard_folder(path: str | Path | Folder, storage_options: StorageOptions = None) -> Folder:
    """The shard folder of ``path`` (the folder, or its ``manifest.json``; a local path or a URL)."""
    if isinstance(path, Folder):
        return path
    if not is_url(path):
        p = local_path(path)
        return Folder.of(p if p.is_dir() else p.parent)
    url = str(path).rstrip("/")
    return Folder.of(url.rsplit("/", 1)[0] if url.endswith("/" + MANIFEST) else url, storage_options)


def manifest_path(path: str | Path, storage_options: StorageOptions = None) -> Path | str:
    """``path`` itself when it is the file, else the folder's ``manifest.json`` (a URL for a URL)."""
    if not is_url(path):
        p = Path(path)
        return p / MANIFEST if p.is_dir() else p
    return shard_folder(path, storage_options).display(MANIFEST)


def folder_of(path: str | Path, storage_options: StorageOptions = None) -> Path | str:
    """The shard folder of ``path`` (the folder, or the folder of its ``manifest.json``; a URL for a URL)."""
    folder = shard_folder(path, storage_options)
    return folder.local if folder.local is not None else folder.location


def has_manifest(folder: str | Path | Folder, storage_options: StorageOptions = None) -> bool:
    """Whether ``folder`` is a finished shard folder (one cheap stat or HEAD, no parsing)."""
    return Folder.of(folder, storage_options).exists(MANIFEST)


def read_manifest(path: str | Path | Folder, storage_options: StorageOptions = None) -> Manifest:
    """The manifest of a shard folder (``path`` may be the folder or the file itself, local or a URL).

    Raises ``FileNotFoundError`` saying the run is unfinished when there is none."""
    folder = shard_folder(path, storage_options) if isinstance(path, Folder) or is_url(path) else None
    where = folder.display(MANIFEST) if folder is not None else str(manifest_path(path))
    try:
        text = folder.read_text(MANIFEST) if folder is not None else Path(where).read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{where} not found: the folder is not an emoprep output, or its run has not finished "
            "(rerun the same `emoprep extract` command to complete it)"
        ) from None
    return Manifest.from_dict(json.loads(text))


def read_manifest_or_none(folder: str | Path | Folder, storage_options: StorageOptions = None) -> Manifest | None:
    """The manifest of ``folder``, None when it is absent or not readable JSON (a check that must
    not fail on a folder it only looks at)."""
    try:
        return read_manifest(folder, storage_options)
    except (OSError, ValueError):
        return None


def write_manifest(folder: str | Path | Folder, manifest: Manifest) -> str:
    """Write ``manifest`` whole as the folder's ``manifest.json`` (last: it marks completion); returns
    where, as shown to a person.

    Local: a temporary file renamed into place (the folder's lock keeps other runs out).  Object
    storage: an exclusive create (S3 ``If-None-Match: *``), so that of two runs that both reach the
    end in one prefix only one finishes it; the other gets ``FileExistsError``."""
    target = Folder.of(folder)
    if target.local is not None:
        path = target.local / MANIFEST
        write_json_atomic(path, manifest.to_dict())
        return str(path)
    if not target.create_exclusive(MANIFEST, json_text(manifest.to_dict()).encode()):
        raise FileExistsError(f"{target.display(MANIFEST)} was written by another run meanwhile")
    return target.display(MANIFEST)


def remove_manifest(folder: str | Path | Folder) -> None:
    """Mark ``folder`` unfinished: a run that starts writing into it removes the old manifest first."""
    Folder.of(folder).remove(MANIFEST)


def dataset_card(manifest: Manifest) -> str:
    """A HuggingFace dataset card (README.md) whose YAML maps each split to its shard files."""
    splits = sorted({s.split for s in manifest.shards})
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {split}", f"    path: \"{split}-*.parquet\""]
    lines += ["---", "", f"# {manifest.dataset} features written by emoprep {manifest.emoprep_version}", ""]
    lines.append(
        f"Schema v{manifest.schema_version} (see emoprep's `schemas/utterance.v{manifest.schema_version}.json`); "
        f"config hash `{manifest.config_hash}`. `{MANIFEST}` lists every shard with its sha256; "
        f"`{FAILURES}` lists utterances whose extraction failed at some stage."
    )
    return "\n".join(lines) + "\n"
