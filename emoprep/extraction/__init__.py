"""Extraction: a raw dataset folder in, a shard folder out.

* :mod:`.pipeline` ``run_extract``, the whole DAG in five named steps (read, plan, run, collect,
  manifest), and the run's summary;
* :mod:`.runtime` where the tasks run (a LocalCluster, an existing cluster, or in-process);
* :mod:`.progress` what ``emoprep extract`` shows on the terminal.

The parts it drives live inside it: dataset readers (:mod:`.readers`), feature extractors
(:mod:`.extractors`), decoding (:mod:`.media`) and the writing engine (:mod:`.engine`), with their
helpers: the configuration (:mod:`.config`), the records passed between stages (:mod:`.records`),
faces, GloVe, tokens, a quiet TensorFlow and the cache folder.  Everything is written through the
contract, :mod:`emoprep.format`; nothing here imports the trainer or the report.
"""

from __future__ import annotations

__all__ = ["RunObserver", "RunSummary", "build_manifest", "prepare_text", "run_extract"]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: the DAG (and Dask) load on first use only
    """``run_extract`` and the rest come from :mod:`.pipeline` when first asked for, so importing one
    part (``emoprep.extraction.media`` for ``predict``, the readers for ``check-raw``) does not load
    the whole DAG."""
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
