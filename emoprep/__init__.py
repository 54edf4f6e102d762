"""emoprep: raw multimodal emotion datasets in, validated Parquet shards out.

The public entry points for readers of the output are :func:`emoprep.read_shards` and
:func:`emoprep.read_manifest`; extraction is :func:`emoprep.pipeline.run_extract`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emoprep")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"


def read_shards(path, split=None, columns=None):  # noqa: ANN001, ANN201 - re-exported below
    from .shards.reader import read_shards as _read

    return _read(path, split=split, columns=columns)


def read_manifest(path):  # noqa: ANN001, ANN201
    from .shards.manifest import read_manifest as _read

    return _read(path)
