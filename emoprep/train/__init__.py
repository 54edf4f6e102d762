"""emoprep's trainer: the MESM paper's models and protocol over emoprep shards.

A second consumer of the shards, independent of extraction: it reads them only through
:mod:`emoprep.format.reader` and the schema, and never imports extractors, media decoding, dataset
readers or the extraction DAG (``tests/train/test_layering.py`` enforces it).

Modules, in the order data flows through them:

- :mod:`.config`      TrainConfig: defaults < ``pipelines/train/<model>.yaml`` < ``--config`` < ``--set``
- :mod:`.inputs`      which columns feed each branch (GloVe or tokens, AUs or face mesh, or face
                      crops and log-mel for end-to-end models) and the featuriser fitted on the
                      training split (vocabulary, normalisation statistics); collate
- :mod:`.albert`      the optional ALBERT text encoder's local folder: checks, tokenizer, model
- :mod:`.labels`      label-name word vectors for EmoEmbs, from the shards' own GloVe tokens
- :mod:`.data`        ShardStream: a streaming IterableDataset over row groups (ranks x loader workers)
- :mod:`.batch`       the Batch a model receives: padded values, masks, presence per modality
- :mod:`.models`      the models, registered by name (baselines; FE2E and MESM with their CNNs and
                      sparse stages)
- :mod:`.metrics`     the paper's metrics and threshold choice, pure functions of predictions
- :mod:`.loop`        one epoch of training, prediction over a split
- :mod:`.distributed` torchrun: process group, device, gathering predictions, sharing the cores
- :mod:`.run`         the run folder: resolve, train with early stopping, checkpoint, resume, evaluate
- :mod:`.progress`    what the terminal shows: stage lines, a bar per epoch, metric tables
- :mod:`.flops`       FLOPs counted per stage (torch's counter; sparse stages by kept sites)
- :mod:`.inspection`  FLOPs of fresh models or runs, and MESM attention pictures
"""
