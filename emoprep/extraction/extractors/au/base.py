"""What an action-unit backend receives and returns, and the 35 OpenFace AU names it fills.

Why a backend interface rather than one AU model: no AU estimator with offline weights exists on
the package registries (see the dependency notes), so users bring one: OpenFace 2 (its binary, or
CSVs it already wrote) or py-feat (weights fetched once from the Hugging Face hub).  Whatever the
backend, the output is the paper's 35 values per sampled frame in OpenFace order; a unit the
backend does not produce is ``None`` (null in Parquet), never a made-up 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from ...faces import FaceBox
from ...media.video import Frame

AU_INTENSITY: tuple[str, ...] = tuple(
    f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
)
AU_PRESENCE: tuple[str, ...] = tuple(
    f"AU{n:02d}_c" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)
)
AU_NAMES: tuple[str, ...] = AU_INTENSITY + AU_PRESENCE
"""The schema's ``aus`` feature names: 17 intensities (0-5) then 18 presences (0/1), OpenFace order."""

AUVector = list[float | None]
"""35 values in :data:`AU_NAMES` order; ``None`` where the backend has no such unit."""


@dataclass(frozen=True)
class AURequest:
    """One utterance's sampled frames and the speaker's face in each (``None``: no face found).

    ``faces`` are in the pixels of each frame's ``rgb`` (the region the detector saw).
    """

    utterance_id: str
    video_id: str
    video_path: str | None
    region: str | None
    frames: Sequence[Frame]
    faces: Sequence[FaceBox | None]


class AUBackend(ABC):
    """An AU estimator.  Built once per worker; loads its model lazily, after :meth:`check`."""

    name: ClassVar[str]

    def __init__(self, options: dict[str, str]) -> None:
        self.options = dict(options)

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~emoprep.errors.SetupError` with a fix when the backend cannot run."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Backend name, versions, model ids and options (manifest + shard metadata)."""

    @abstractmethod
    def predict(self, request: AURequest) -> list[AUVector | None]:
        """One 35-vector (or ``None`` when the backend has no value) per frame of the request."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release processes or models."""


def empty_vector() -> AUVector:
    return [None] * len(AU_NAMES)
