"""EmoEmbs (Dai et al. 2020, "Modality-Transferable Emotion Embeddings for Low-Resource Multimodal
Emotion Recognition").

Each emotion is a vector in the text space, initialised from the word vector of its name (GloVe) so
that related emotions start close.  Learned mapping functions carry those vectors into the acoustic
and visual spaces; there is no per-class output layer.  Each modality encodes the utterance into its
own space and scores every emotion by a dot product; the scores of the modalities a row has are
fused.  The mappings, not per-modality class weights, are what make the embeddings transferable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import SetupError
from ..batch import InputSpec, ModalityInput
from . import ModelContext, check_dropout, check_one_of, check_positive, register
from .common import LateFusion, nonempty
from .lf_lstm import LFLSTMSettings, LSTMBranch


MAPPINGS = ("linear", "mlp")


@dataclass(frozen=True)
class EmoEmbsSettings:
    hidden: int = 128
    """LSTM width per direction, and the size of the acoustic and visual embedding spaces."""
    emb_dim: int = 300
    """Size of the text space when no label vectors are given (else their width)."""
    mapping: str = "mlp"
    """Form of the text -> acoustic / visual mapping functions: ``linear`` or ``mlp``."""
    freeze_text_embeddings: bool = False
    """Keep the text-space emotion embeddings at their initial vectors."""
    dropout: float = 0.1

    def validate(self) -> None:
        check_positive(self, "hidden", "emb_dim")
        check_one_of(self, "mapping", MAPPINGS)
        check_dropout(self, "dropout")


def _mapping(kind: str, src: int, dst: int) -> nn.Module:
    """Text-space emotion vectors -> another modality's space: the only link between the spaces."""
    if kind == "linear":
        return nn.Linear(src, dst)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(src, dst), nn.Tanh(), nn.Linear(dst, dst))
    raise SetupError(f"emoembs: mapping must be 'linear' or 'mlp', got {kind!r}")


@register("emoembs", EmoEmbsSettings,
          "EmoEmbs: emotion word embeddings transferred to each modality's space (Dai et al. 2020, paper baseline)")
class EmoEmbs(nn.Module):
    def __init__(self, inputs: dict[str, InputSpec], n_classes: int, settings: EmoEmbsSettings,
                 context: ModelContext) -> None:
        super().__init__()
        settings.validate()
        vectors = context.label_vectors
        if vectors is None:
            vectors = torch.randn(n_classes, settings.emb_dim) * settings.emb_dim ** -0.5
        elif vectors.dim() != 2 or vectors.shape[0] != n_classes:
            raise SetupError(f"emoembs: label_vectors must be ({n_classes}, dim), got {tuple(vectors.shape)}")
        text_dim = vectors.shape[1]
        self.text_emotions = nn.Parameter(
            vectors.detach().clone().float(), requires_grad=not settings.freeze_text_embeddings,
        )
        lstm = LFLSTMSettings(hidden=settings.hidden, layers=1, dropout=settings.dropout, bidirectional=True)
        space = {m: text_dim if m == "text" else settings.hidden for m in inputs}
        self.encoders = nn.ModuleDict({m: LSTMBranch(spec, space[m], lstm) for m, spec in inputs.items()})
        self.maps = nn.ModuleDict({
            m: _mapping(settings.mapping, text_dim, space[m]) for m in inputs if m != "text"
        })
        self.fusion = LateFusion(len(inputs))

    def emotions(self, modality: str) -> torch.Tensor:
        """``(n_classes, dim)`` emotion embeddings in ``modality``'s space."""
        return self.text_emotions if modality == "text" else self.maps[modality](self.text_emotions)

    def forward(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        inputs = nonempty(inputs)
        scores = torch.stack(
            [enc(inputs[m]) @ self.emotions(m).T for m, enc in self.encoders.items()], dim=1,
        )
        present = torch.stack([inputs[m].present for m in self.encoders], dim=1)
        return self.fusion(scores, present)
