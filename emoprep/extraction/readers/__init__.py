"""Dataset readers, one module per corpus, looked up by the name given to ``--dataset``.

Modules are imported on demand so that reading one corpus never imports the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import Any, cast

from ...errors import DatasetError, SetupError
from ...format.storage import is_url, redact
from ..config import ExtractConfig
from .base import CorpusReader, DatasetReader, ReadResult
from .mirror import metadata_mirror, named_paths, selector

READERS: dict[str, str] = {
    "mosei": "emoprep.extraction.readers.mosei:MoseiReader",
    "iemocap": "emoprep.extraction.readers.iemocap:IemocapReader",
    "recordings": "emoprep.extraction.readers.recordings:RecordingsReader",
    "demo": "emoprep.extraction.readers.demo.reader:DemoReader",
}
OLD_NAMES: dict[str, str] = {"manifest": "recordings"}
"""Dataset names that still work, with the name that replaced them.  ``manifest`` was renamed
because it also names the run's table of contents (``manifest.json``); a run under the old name
writes exactly what it wrote before (its rows and config hash carry the name it was given)."""
READERS.update({old: READERS[new] for old, new in OLD_NAMES.items()})


def get_reader(name: str) -> DatasetReader:
    """Instantiate the reader registered under ``name``."""
    try:
        target = READERS[name]
    except KeyError:
        raise SetupError(f"unknown dataset {name!r}; choose from {', '.join(sorted(set(READERS) - set(OLD_NAMES)))}") from None
    module, _, cls = target.partition(":")
    return getattr(import_module(module), cls)()


def read_dataset(name: str, root: Path | str | None, config: ExtractConfig,
                 storage_options: Mapping[str, Any] | None = None) -> ReadResult:
    """``name``'s reader over ``root``, a local path or a URL (``s3://bucket/MOSEI``).

    The recordings reader reads its list and media from URLs itself.  A corpus reader (MOSEI,
    IEMOCAP) declares the files it reads (``metadata``); on a URL root it reads a temporary local
    mirror of those files only, and its media are found, probed and recorded as URLs
    (:func:`read_url_root`).  The demo builds its own local tree, so it takes a local root only."""
    reader = get_reader(name)
    remote = root is not None and is_url(str(root))
    local = Path(root) if root is not None and not remote else None
    if getattr(reader, "reads_urls", False):  # its media cells may be URLs even in a local list
        return reader.read(str(root) if remote else local, config, storage_options=storage_options)
    if remote and getattr(reader, "metadata", None) is None:
        raise SetupError(
            f"--root {redact(str(root))}: --dataset {name} reads a local folder only; --dataset mosei and "
            "iemocap read a tree on object storage, and --dataset recordings a list (itself local or a URL "
            "such as s3://bucket/list.csv) whose video/audio cells are URLs; see docs/recordings.md"
        )
    if remote:
        return read_url_root(cast(CorpusReader, reader), str(root), config, storage_options or {})
    return reader.read(local, config)


def read_url_root(reader: CorpusReader, url: str, config: ExtractConfig, storage_options: Mapping[str, Any]
                  ) -> ReadResult:
    """``reader`` over the corpus tree at ``url``: its metadata mirrored locally for the read, its
    media left in place and named by URL; paths in issues and errors name the URL, not the mirror.

    A URL carrying credentials (``s3://key:secret@bucket``) is refused: media URLs are recorded in
    ``utterances.parquet``, so credentials must come as storage options."""
    if redact(url) != url:
        raise SetupError(f"--root {redact(url)}: give credentials as --storage-option KEY=VALUE, not in the URL "
                         "(the media URLs under it are recorded in utterances.parquet)")
    wanted = selector(reader.metadata, named_paths(value for _, value in config.dataset_options))
    with metadata_mirror(url, storage_options, wanted) as mirror:
        try:
            result = reader.read(mirror.root, config, media=mirror.media)
        except (DatasetError, SetupError) as exc:
            raise type(exc)(mirror.shown(str(exc))) from None
    result.issues = [replace(i, source=mirror.shown(i.source), message=mirror.shown(i.message)) for i in result.issues]
    return result


__all__ = ["OLD_NAMES", "READERS", "DatasetReader", "ReadResult", "get_reader", "read_dataset", "read_url_root"]
