"""The one terminal every command prints to (stderr, so stdout stays clean for piping).

Its own module, at the bottom: read-only commands (``inspect``) print without importing the
extraction DAG that :mod:`emoprep.extraction.progress` observes.
"""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console


@lru_cache(maxsize=1)
def console() -> Console:
    return Console(stderr=True, highlight=False)
