"""emoprep's trainer: the MESM paper's models and protocol over emoprep shards.

A second consumer of the shards, independent of extraction: it reads them only through
:mod:`emoprep.shards.reader` and the schema, and never imports extractors, media decoding, dataset
readers or the extraction DAG (``tests/train/test_layering.py`` enforces it).

Modules, in the order data flows through them:

- :mod:`.config`    TrainConfig: defaults < ``pipelines/train/<model>.yaml`` < ``--config`` < ``--set``
- :mod:`.inputs`    which columns feed each branch (GloVe or tokens, AUs or face mesh) and the
                    featuriser fitted on the training split (vocabulary, normalisation statistics)
- :mod:`.data`      ShardStream: a streaming IterableDataset over row groups (ranks x loader workers)
- :mod:`.batch`     the Batch a model receives: padded values, masks, presence per modality
- :mod:`.models`    the models, registered by name
- :mod:`.metrics`   the paper's metrics and threshold choice, pure functions of predictions
- :mod:`.loop`      one epoch of training, prediction over a split
- :mod:`.run`       the run folder: resolve, train with early stopping, checkpoint, resume, evaluate
"""
