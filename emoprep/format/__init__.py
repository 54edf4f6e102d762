"""The output contract: what a shard folder and a run folder hold, and the one place that reads and
writes it.

Extraction writes through this package, and every consumer (the trainer, the HTML report, ``emoprep
inspect``, :mod:`emoprep.testing`, other projects) reads through it; it imports nothing of emoprep but
:mod:`emoprep.errors`, so any part may depend on it and it depends on none.

* :mod:`.schema` the published column schema (``schemas/utterance.v<N>.json``) and ``validate_table``;
  :mod:`.schema_docs` renders it as Markdown;
* :mod:`.names` every file name of both folders, shard naming, split names;
* :mod:`.manifest` the typed ``manifest.json`` (:class:`~.manifest.Manifest`) and the dataset card;
* :mod:`.run_record` the typed ``run.json`` (:class:`~.run_record.RunRecord`);
* :mod:`.predictions` the table ``emoprep predict`` writes (columns, metadata) and its reader;
* :mod:`.footer` the ``emoprep.*`` Parquet metadata of each file; :mod:`.failures` ``failures.parquet``;
* :mod:`.codecs` how face crops, log-mel chunks and face-mesh points are stored, both ways;
* :mod:`.reader` the consumer readers (``read_shards``, ``iter_shards``, row groups);
* :mod:`.verify` a folder checked against its manifest; :mod:`.files` atomic JSON and sha256.
"""
