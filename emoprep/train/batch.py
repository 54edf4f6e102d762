"""The contract between the data layer and the models: what one batch holds.

Every modality arrives padded to the longest sequence in the batch with a boolean ``mask`` (True =
a real position) and a ``present`` flag per row (False when the row has no valid position at all:
no face in any frame, no text, a failed extractor).  Padding and absent rows hold zeros, but a model
must never let them count: it masks them out of attention and pooling, and leaves an absent modality
out of the fusion for that row.  Nothing is invented for a missing modality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

MODALITIES: tuple[str, ...] = ("text", "acoustic", "visual")


@dataclass(frozen=True)
class InputSpec:
    """What one branch of a model receives, decided from the shards before the model is built.

    ``kind == "dense"``: ``values`` are float32 ``(B, T, dim)``.
    ``kind == "tokens"``: ``values`` are int64 ``(B, T)`` ids into a vocabulary of ``vocab_size``
    (0 = padding, 1 = unknown); the model owns a trainable embedding.
    ``kind == "images"``: ``values`` are float32 ``(B, T, *image_shape)``, one image per position:
    face crops as RGB in [0, 255] ``(3, S, S)`` (the model normalises them), log-mel chunks as
    standardised ln power ``(1, 128, 32)`` (mels x frames).
    """

    modality: str
    kind: Literal["dense", "tokens", "images"]
    column: str
    dim: int = 0
    vocab_size: int = 0
    image_shape: tuple[int, ...] = ()


@dataclass
class ModalityInput:
    values: torch.Tensor
    """``(B, T, dim)`` float32 for dense inputs, ``(B, T)`` int64 token ids for token inputs,
    ``(B, T, C, H, W)`` float32 for image inputs."""
    mask: torch.Tensor
    """``(B, T)`` bool, True at real positions."""

    @property
    def present(self) -> torch.Tensor:
        """``(B,)`` bool: the row has at least one real position in this modality."""
        return self.mask.any(dim=1)

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)

    def to(self, device: torch.device | str) -> ModalityInput:
        return ModalityInput(self.values.to(device, non_blocking=True), self.mask.to(device, non_blocking=True))


@dataclass
class Batch:
    ids: list[str]
    """``utterance_id`` of each row, in order."""
    inputs: dict[str, ModalityInput]
    """One entry per modality the model uses (keys from :data:`MODALITIES`)."""
    targets: torch.Tensor
    """``(B, C)`` float32 multi-hot (or one-hot) labels in the run's label order."""
    splits: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.ids, {k: v.to(device) for k, v in self.inputs.items()}, self.targets.to(device), self.splits)

    def __len__(self) -> int:
        return len(self.ids)
