"""Word tokenisation in the convention of GloVe 840B (Common Crawl, cased, PTB-style tokens).

GloVe 840B was trained on text split by the Stanford tokenizer, so its vocabulary holds ``do`` +
``n't``, ``it`` + ``'s``, and punctuation as separate tokens; case is kept (``Apple`` and ``apple`` are
different vectors).  Matching that convention is what keeps the OOV rate of real transcripts low.
"""

from __future__ import annotations

import re
import unicodedata

_NONVERBAL = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")
"""Transcriber markers: IEMOCAP's ``[LAUGHTER]``, ``[BREATHING]``; MOSEI's ``<sil>``-style tags."""

_TOKEN = re.compile(
    r"""
      \w+(?=n't\b)            # the "do" of "don't", the "ca" of "can't" (GloVe has both halves)
    | n't\b
    | '(?:s|re|ve|ll|d|m)\b   # clitics: it 's, we 're, I 've, you 'll, he 'd, I 'm
    | \w+(?:[-.]\w+)*         # words, numbers (3.5), hyphenated words (well-known), U.S
    | \.\.\.                  # ellipsis as one token
    | [^\w\s]                 # any other punctuation mark, one per token
    """,
    re.VERBOSE | re.IGNORECASE,
)

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."})


def tokenize(text: str, drop_nonverbal: bool = True) -> list[str]:
    """Split ``text`` into cased GloVe-840B-style tokens.

    Unicode is NFC-normalised and typographic quotes are mapped to ASCII (the clitic rules need
    ``'``); letters of any script stay as they are.
    """
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    if drop_nonverbal:
        text = _NONVERBAL.sub(" ", text)
    return _TOKEN.findall(text)
