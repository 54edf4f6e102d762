"""The small protocol every feature extractor follows.

An extractor is built once per worker process (heavy models load in ``__init__``), checked once in
the client before any task is submitted (``check()`` raises :class:`~emoprep.errors.SetupError` with
an actionable message), described once for the manifest and file metadata (``describe()``), and
then called per utterance (``extract()``), returning values for exactly the schema columns it owns.

``extract`` may raise :class:`~emoprep.errors.UtteranceError`/``MediaError`` (recorded as a failure
under its ``stage``); any other exception is also recorded, under the extractor's ``name``.  Either
way the extractor's columns are null for that row and the rest of the row is kept.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..media.segment import UtteranceMedia


class Extractor(ABC):
    """Base class of the extractors registered in :mod:`emoprep.extraction.extractors`."""

    name: ClassVar[str]
    """Registry key and failure stage, e.g. ``"text"``, ``"acoustic"``, ``"logmel"``, ``"face"``."""

    columns: ClassVar[tuple[str, ...]]
    """Schema columns this extractor fills; all others are left to other extractors."""

    def check(self) -> None:  # noqa: B027 - optional hook
        """Fail fast, before any work, when a resource (weights, vectors, binary) is missing."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Backend, version and parameters: written to the manifest and to each shard's metadata."""

    def run_stats(self) -> dict[str, Any]:
        """Counters accumulated since the last call (e.g. OOV tokens); merged into the manifest."""
        return {}

    @abstractmethod
    def extract(self, media: UtteranceMedia) -> dict[str, Any]:
        """Column values for one utterance, keyed by the names in :attr:`columns`."""
