"""emoprep: raw multimodal emotion datasets in, validated Parquet shards out.

The public entry points for readers of the output are :func:`emoprep.read_shards` (a split as one
table), :func:`emoprep.iter_shards` (a split as record batches, for splits that do not fit in memory)
and :func:`emoprep.read_manifest`; each takes a local folder or an fsspec URL (``s3://bucket/prefix``) with
``storage_options=`` for its store; extraction is :func:`emoprep.extraction.run_extract`; a trained run
applied to new recordings is :func:`emoprep.predict`.
"""

from __future__ import annotations

from .version import __version__


def read_shards(path, split=None, columns=None, *, storage_options=None):  # noqa: ANN001, ANN201 - re-exported below
    from .format.reader import read_shards as _read

    return _read(path, split=split, columns=columns, storage_options=storage_options)


def iter_shards(path, split=None, columns=None, batch_rows=256, *, storage_options=None):  # noqa: ANN001, ANN201
    """Record batches of at most ``batch_rows`` rows of a finished run or split, read row group by row
    group (see :func:`emoprep.format.reader.iter_shards`; imported here lazily so ``import emoprep``
    stays cheap)."""
    from .format.reader import iter_shards as _iter

    return _iter(path, split=split, columns=columns, batch_rows=batch_rows, storage_options=storage_options)


def read_manifest(path, *, storage_options=None):  # noqa: ANN001, ANN201
    from .format.manifest import read_manifest as _read

    return _read(path, storage_options)


def predict(run, media=(), **options):  # noqa: ANN001, ANN003, ANN201
    """Per-utterance emotions of new recordings by a trained run, as a pyarrow Table (see
    :func:`emoprep.prediction.predict`; imported lazily: it loads torch and the extraction stack)."""
    from .prediction import predict as _predict

    return _predict(run, media, **options)


__all__ = ["__version__", "iter_shards", "predict", "read_manifest", "read_shards"]
