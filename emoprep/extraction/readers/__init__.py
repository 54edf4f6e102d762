"""Dataset readers, one module per corpus, looked up by the name given to ``--dataset``.

Modules are imported on demand so that reading one corpus never imports the others.
"""

from __future__ import annotations

from importlib import import_module

from ...errors import SetupError
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


__all__ = ["OLD_NAMES", "READERS", "DatasetReader", "ReadResult", "get_reader"]
