"""Extraction: a raw dataset folder in, a shard folder out.

* :mod:`.pipeline` ``run_extract``, the whole DAG in five named steps (read, plan, run, collect,
  manifest), and the run's summary;
* :mod:`.runtime` where the tasks run (a LocalCluster, an existing cluster, or in-process);
* :mod:`.progress` what ``emoprep extract`` shows on the terminal.

The parts it drives sit beside it: dataset readers (:mod:`emoprep.extraction.readers`), extractors
(:mod:`emoprep.extraction.extractors`), decoding (:mod:`emoprep.extraction.media`) and the writing engine
(:mod:`emoprep.extraction.engine`); everything is written through the contract, :mod:`emoprep.format`.
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
