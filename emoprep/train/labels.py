"""Word vectors of the label names (EmoEmbs' emotion embeddings), found in the shards themselves.

The trainer never opens a GloVe file: the shards already hold the GloVe vector of every token they
contain.  When the text branch uses ``glove`` and every label name (``anger``, ``happiness``, ...)
occurs as a token of the training split, its vector is taken from there; otherwise the embeddings
are learned from a random start, and the run records which names were missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import ShardStream, column_values, whole_row_groups


def label_vectors(folder: Path, label_names: tuple[str, ...], text_column: str) -> tuple[torch.Tensor | None, dict[str, Any]]:
    """``(n_labels, 300)`` vectors and a note for ``run.json``; ``None`` when they must be learned."""
    if text_column != "glove":
        return None, {"source": "learned", "why": "the text branch uses learned token embeddings (no GloVe in the shards)"}
    wanted = {name.lower(): name for name in label_names}
    found: dict[str, np.ndarray] = {}
    # the whole split on every rank (not the rank's share), so that all find the same vectors
    whole = ShardStream(folder, "train", ["tokens", "glove", "glove_oov"], transform=whole_row_groups,
                        rank=0, world_size=1)
    for table in whole:
        vectors = column_values(table.column("glove"))
        for toks, oov, vecs in zip(table.column("tokens").to_pylist(), table.column("glove_oov").to_pylist(), vectors):
            if toks is None or vecs is None:
                continue
            for k, tok in enumerate(toks):
                name = wanted.get(tok.lower())
                if name and name not in found and not (oov and oov[k]):
                    found[name] = vecs[k]
        if len(found) == len(label_names):
            break
    missing = [n for n in label_names if n not in found]
    if missing:
        return None, {"source": "learned", "why": f"label name(s) {missing} never occur with a GloVe vector in the training split"}
    stacked = np.stack([found[n] for n in label_names]).astype(np.float32)
    return torch.from_numpy(stacked), {"source": "glove vectors of the label names, from the training split's tokens"}
