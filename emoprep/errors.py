"""Exception types that carry enough context for a clear message and a failure record.

Two families matter to the pipeline:

* :class:`SetupError` is raised *before any work starts* (missing GloVe file, missing model weights,
  unreadable dataset root).  The CLI prints its message and exits with status 2; nothing is written.
* :class:`UtteranceError` (and its subclass :class:`MediaError`) concerns one utterance only.  The shard
  runner catches it, records ``(utterance_id, stage, error_type, message)`` in the failures table and
  carries on with the rest of the shard, so one bad clip never costs the run.
"""

from __future__ import annotations


class EmoprepError(Exception):
    """Base class of every error emoprep raises on purpose."""


class SetupError(EmoprepError):
    """The run cannot start: a resource, flag or path is missing. The message says how to fix it."""


class DatasetError(EmoprepError):
    """A raw dataset tree is missing files or holds malformed records that stop the reader."""


class SchemaError(EmoprepError):
    """A table does not satisfy the published schema; raised before anything is written."""


class UtteranceError(EmoprepError):
    """Processing one utterance failed at ``stage``; recorded as a failure, never fatal for the run."""

    def __init__(self, stage: str, message: str, partial: dict | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.partial = partial
        """Column values that were computed before the failure and are still right (e.g. face crops
        when only the action units failed); the shard keeps them and nulls the extractor's rest."""

    def __reduce__(self):  # noqa: ANN204 - keep ``stage`` when pickled between Dask processes
        return (type(self), (self.stage, str(self), self.partial))


class MediaError(UtteranceError):
    """Decoding an utterance's audio or video failed (corrupt file, no audio stream, empty segment)."""
