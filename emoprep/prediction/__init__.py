"""``emoprep predict``: a trained run applied to new recordings, from raw media to per-utterance emotions.

* :mod:`.segments` media -> utterances: transcript cues (:mod:`.transcripts`) or fixed windows;
* :mod:`.features` their features, extracted with the run's own extraction configuration on the
  Dask runtime of ``extract``;
* :mod:`.apply` the run's featuriser and best weights over them, decided by its validation thresholds;
* :mod:`.api` :func:`predict`, the four steps in order.

It sits above both extraction and the trainer (it drives one and loads the other), beside the CLI; the
table it returns is declared in :mod:`emoprep.format.predictions`, which the timeline report reads.
(The package is not called ``predict`` so that ``emoprep.predict`` stays the function.)
"""

from __future__ import annotations

from .api import predict

__all__ = ["predict"]
