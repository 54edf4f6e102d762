"""Dataset readers, one module per corpus, looked up by the name given to ``--dataset``.

Modules are imported on demand so that reading one corpus never imports the others.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import SetupError
from .base import DatasetReader, ReadResult

READERS: dict[str, str] = {
    "mosei": "emoprep.datasets.mosei:MoseiReader",
    "iemocap": "emoprep.datasets.iemocap:IemocapReader",
    "manifest": "emoprep.datasets.manifest:ManifestReader",
    "demo": "emoprep.datasets.demo:DemoReader",
}


def get_reader(name: str) -> DatasetReader:
    """Instantiate the reader registered under ``name``."""
    try:
        target = READERS[name]
    except KeyError:
        raise SetupError(f"unknown dataset {name!r}; choose from {', '.join(sorted(READERS))}") from None
    module, _, cls = target.partition(":")
    return getattr(import_module(module), cls)()


__all__ = ["READERS", "DatasetReader", "ReadResult", "get_reader"]
