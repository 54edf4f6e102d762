"""Text modality: GloVe-840B-style tokens and their 300-d vectors, with an OOV mask.

Without a GloVe file the tokens are still written and the vector columns are null (the manifest says
so); with one, the file is turned into a memory-mapped cache in the client before any task runs (see
:mod:`emoprep.extraction.glove`), and each worker opens that cache once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import SetupError
from ..config import ExtractConfig
from ..glove import GloveVectors, ensure_glove_cache
from ..media.segment import UtteranceMedia
from ..tokens import tokenize
from .base import Extractor


class TextExtractor(Extractor):
    name = "text"
    columns = ("tokens", "glove", "glove_oov")

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config.text
        self.vectors: GloveVectors | None = None
        if self.config.glove:
            cache = ensure_glove_cache(self.config.glove, self.config.glove_checksum)
            self.vectors = GloveVectors(cache)
            if self.vectors.dim != 300:
                raise SetupError(
                    f"{Path(self.config.glove).name} has {self.vectors.dim}-d vectors; schema v1 stores 300-d "
                    "GloVe (glove.840B.300d or glove.6B.300d)"
                )
        self._tokens = 0
        self._oov = 0

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "glove" if self.vectors else "tokens-only",
            # The name this tokenizer has been recorded under since the first shards (the module is
            # emoprep.extraction.tokens now); kept so that unchanged output stays byte-identical.
            "tokenizer": "emoprep.tokenize (GloVe 840B / PTB convention, cased)",
            "glove_file": Path(self.config.glove).name if self.config.glove else None,
            "glove_sha256": self.config.glove_checksum,
            "vocabulary": len(self.vectors) if self.vectors else None,
            "dim": self.vectors.dim if self.vectors else None,
            "drop_nonverbal": self.config.drop_nonverbal,
        }

    def run_stats(self) -> dict[str, Any]:
        stats = {"tokens": self._tokens, "oov_tokens": self._oov}
        self._tokens = self._oov = 0
        return stats

    def extract(self, media: UtteranceMedia) -> dict[str, Any]:
        text = media.utterance.text
        if text is None:
            return {"tokens": None, "glove": None, "glove_oov": None}
        tokens = tokenize(text, self.config.drop_nonverbal)
        if self.vectors is None:
            return {"tokens": tokens, "glove": None, "glove_oov": None}
        vectors, oov = self.vectors.lookup(tokens)
        self._tokens += len(tokens)
        self._oov += int(oov.sum())
        return {"tokens": tokens, "glove": vectors, "glove_oov": oov.tolist()}
