"""Dataset readers, one module per corpus, looked up by the name given to ``--dataset``.

Modules are imported on demand so that reading one corpus never imports the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from ...errors import SetupError
from ...format.storage import is_url, redact
from ..config import ExtractConfig
from .base import DatasetReader, ReadResult

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
    """``name``'s reader over ``root``, a local path or, for readers that take one, a URL.

    Only the recordings reader reads a URL root (its list and media on object storage).  The corpus
    readers walk large trees of transcripts and label files; for them a URL is refused with what
    works instead, rather than half-supported."""
    reader = get_reader(name)
    remote = root is not None and is_url(str(root))
    local = Path(root) if root is not None and not remote else None
    if getattr(reader, "reads_urls", False):  # its media cells may be URLs even in a local list
        return reader.read(str(root) if remote else local, config, storage_options=storage_options)
    if remote:
        raise SetupError(
            f"--root {redact(str(root))}: --dataset {name} reads a local folder only. Media on object storage "
            "work through --dataset recordings: a list (itself local or a URL such as s3://bucket/list.csv) "
            "whose video/audio cells are URLs; see docs/recordings.md"
        )
    return reader.read(local, config)


__all__ = ["OLD_NAMES", "READERS", "DatasetReader", "ReadResult", "get_reader", "read_dataset"]
