"""Extraction: a raw dataset folder in, a shard folder out.

* :mod:`.pipeline` ``run_extract``, the whole DAG in five named steps (read, plan, run, collect,
  manifest), and the run's summary;
* :mod:`.runtime` where the tasks run (a LocalCluster, an existing cluster, or in-process);
* :mod:`.progress` what ``emoprep extract`` shows on the terminal.

The parts it drives sit beside it: dataset readers (:mod:`emoprep.datasets`), extractors
(:mod:`emoprep.extractors`), decoding (:mod:`emoprep.media`) and the writing engine
(:mod:`emoprep.shards`); everything is written through the contract, :mod:`emoprep.format`.
"""

from __future__ import annotations

from .pipeline import RunObserver, RunSummary, build_manifest, prepare_text, run_extract

__all__ = ["RunObserver", "RunSummary", "build_manifest", "prepare_text", "run_extract"]
