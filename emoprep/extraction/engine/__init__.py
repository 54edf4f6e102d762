"""The writing engine of extraction: the shard plan (``plan.py``), the per-part and per-shard tasks
(``worker.py``), Arrow columns from extractor values (``columns.py``), the atomic writer and the
resume check (``writer.py``), the output folder's lock (``lock.py``) and the check before replacing
another configuration's shards (``replace.py``).  What it writes, and every name it writes under,
comes from the contract, :mod:`emoprep.format`; the contract never imports the engine.
"""
