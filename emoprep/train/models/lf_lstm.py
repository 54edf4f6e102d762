"""LF-LSTM: one (Bi)LSTM per modality over the hand-crafted sequences, late fusion of their logits.

The paper's weakest baseline (IEMOCAP 71.8 Acc / 49.5 F1): each modality is classified on its own and
the logits are averaged, so no modality ever sees another.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..batch import InputSpec, ModalityInput
from . import ModelContext, check_dropout, check_positive, register
from .common import InputProjection, LateFusionModel, compact, masked_mean


@dataclass(frozen=True)
class LFLSTMSettings:
    hidden: int = 128
    """Width of the input projection and of each LSTM direction."""
    layers: int = 1
    dropout: float = 0.1
    bidirectional: bool = True

    def validate(self) -> None:
        check_positive(self, "hidden", "layers")
        check_dropout(self, "dropout")


class LSTMBranch(nn.Module):
    """Projection -> packed (Bi)LSTM -> masked mean -> linear, for one modality (EmoEmbs reuses it).

    Packing by length keeps padding out of the recurrence (the backward direction would otherwise start
    on zeros); real positions are first compacted to the front, so a hole (a frame without a face)
    is skipped rather than read as a step.  An absent row is packed with length 1 because packing refuses 0; its output is
    masked out of the mean and the fusion ignores the row.
    """

    def __init__(self, spec: InputSpec, out_dim: int, s: LFLSTMSettings) -> None:
        super().__init__()
        self.proj = InputProjection(spec, s.hidden)
        self.lstm = nn.LSTM(
            s.hidden, s.hidden, num_layers=s.layers, batch_first=True,
            bidirectional=s.bidirectional, dropout=s.dropout if s.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(s.dropout)
        self.head = nn.Linear(s.hidden * (2 if s.bidirectional else 1), out_dim)

    def forward(self, x: ModalityInput) -> torch.Tensor:
        x = compact(x)
        h = self.drop(self.proj(x.values, x.mask))
        lengths = x.lengths.clamp(min=1).cpu()
        packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
        return self.head(self.drop(masked_mean(out, x.mask)))


@register("lf-lstm", LFLSTMSettings, "LF-LSTM: a BiLSTM per modality, late fusion of logits (paper baseline)")
class LFLSTM(LateFusionModel):
    def __init__(self, inputs: dict[str, InputSpec], n_classes: int, settings: LFLSTMSettings,
                 context: ModelContext) -> None:
        settings.validate()
        super().__init__({m: LSTMBranch(spec, n_classes, settings) for m, spec in inputs.items()})
