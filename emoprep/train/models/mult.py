"""MulT (Tsai et al. 2019, "Multimodal Transformer for Unaligned Multimodal Language Sequences").

Each modality is lifted to width ``d`` by a temporal convolution; for every ordered pair (source ->
target) a cross-modal transformer lets the target's positions attend to the source's, so unaligned
sequences interact without word-level alignment.  A target's cross-modal streams are concatenated,
run through a self-attention transformer and pooled; the pooled targets go to a residual MLP head.

Differences from the reference code, both forced by padded batches: pooling is a masked mean instead
of "the last element" (which would be padding), and attention gets key padding masks.  A stream whose
source is absent in a row is zeroed for that row; with one modality the target's own sequence is its
only stream, so the model degrades to a self-attention transformer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import SetupError
from ..batch import InputSpec, ModalityInput
from . import ModelContext, check_dropout, check_positive, check_width_heads, register
from .common import (
    InputProjection,
    attention_padding_mask,
    masked_mean,
    nonempty,
    sinusoidal_encoding,
    zero_absent,
)


@dataclass(frozen=True)
class MulTSettings:
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    """Layers of every cross-modal and every self-attention transformer."""
    kernel_size: int = 3
    """Odd width of the temporal convolutions (1 = position-wise projection)."""
    dropout: float = 0.1
    """Dropout on embeddings, residual branches, feed-forward and the head."""
    attn_dropout: float = 0.1

    def validate(self) -> None:
        check_width_heads(self)
        check_positive(self, "layers")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise SetupError(f"settings.kernel_size must be odd and positive, got {self.kernel_size}")
        check_dropout(self, "dropout", "attn_dropout")


class TemporalProjection(nn.Module):
    """Conv1d to width ``d`` so each position also sees its neighbours (the paper's temporal
    convolution).  Padding is zeroed first: a real position next to padding reads zeros whatever the
    batch's length, which keeps a row's output independent of its batch-mates."""

    def __init__(self, spec: InputSpec, d: int, kernel_size: int) -> None:
        super().__init__()
        self.embed = InputProjection(spec, d, norm=False) if spec.kind == "tokens" else None
        self.conv = nn.Conv1d(d if self.embed else spec.dim, d, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: ModalityInput) -> torch.Tensor:
        v = self.embed(x.values, x.mask) if self.embed else x.values * x.mask.unsqueeze(-1)
        return self.conv(v.transpose(1, 2)).transpose(1, 2)


class MulTLayer(nn.Module):
    """Pre-LN attention of the target (queries) over the source (keys, values), then a pre-LN
    feed-forward block, both residual.  Without a source it is a self-attention layer."""

    def __init__(self, d: int, s: MulTSettings, cross: bool) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d) if cross else None
        self.attn = nn.MultiheadAttention(d, s.heads, dropout=s.attn_dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Dropout(s.dropout), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(s.dropout)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None, key_pad: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(x)
        kv = q if self.norm_kv is None else self.norm_kv(source)
        x = x + self.drop(self.attn(q, kv, kv, key_padding_mask=key_pad, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm_ff(x)))


class MulTEncoder(nn.Module):
    """A stack of :class:`MulTLayer` with scaled sinusoidal positions on its inputs and a final norm."""

    def __init__(self, d: int, s: MulTSettings, cross: bool) -> None:
        super().__init__()
        self.scale = math.sqrt(d)
        self.drop = nn.Dropout(s.dropout)
        self.layers = nn.ModuleList(MulTLayer(d, s, cross) for _ in range(s.layers))
        self.norm = nn.LayerNorm(d)

    def _embed(self, h: torch.Tensor) -> torch.Tensor:
        return self.drop(h * self.scale + sinusoidal_encoding(h.shape[1], h.shape[2], h.device))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor,
                source: torch.Tensor | None = None, source_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self._embed(x)
        if source is not None:
            source = self._embed(source)
        key_pad = attention_padding_mask(x_mask if source_mask is None else source_mask)
        for layer in self.layers:
            x = layer(x, source, key_pad)
        return self.norm(x)


@register("mult", MulTSettings,
          "MulT: cross-modal transformers over unaligned sequences (Tsai et al. 2019, paper baseline)")
class MulT(nn.Module):
    def __init__(self, inputs: dict[str, InputSpec], n_classes: int, settings: MulTSettings,
                 context: ModelContext) -> None:
        super().__init__()
        settings.validate()
        d = settings.d_model
        self.modalities = list(inputs)
        self.sources = {t: [m for m in self.modalities if m != t] for t in self.modalities}
        self.proj = nn.ModuleDict(
            {m: TemporalProjection(spec, d, settings.kernel_size) for m, spec in inputs.items()}
        )
        self.cross = nn.ModuleDict({
            f"{s}_to_{t}": MulTEncoder(d, settings, cross=True) for t, srcs in self.sources.items() for s in srcs
        })
        width = d * max(1, len(self.modalities) - 1)
        self.self_attn = nn.ModuleDict({t: MulTEncoder(width, settings, cross=False) for t in self.modalities})
        total = width * len(self.modalities)
        self.head = nn.Sequential(
            nn.Linear(total, total), nn.ReLU(), nn.Dropout(settings.dropout), nn.Linear(total, total),
        )
        self.out = nn.Linear(total, n_classes)

    def forward(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        inputs = nonempty(inputs)
        h = {m: self.proj[m](inputs[m]) for m in self.modalities}
        pooled = []
        for t in self.modalities:
            mask = inputs[t].mask
            streams = [
                zero_absent(self.cross[f"{s}_to_{t}"](h[t], mask, h[s], inputs[s].mask), inputs[s].present)
                for s in self.sources[t]
            ] or [h[t]]
            pooled.append(masked_mean(self.self_attn[t](torch.cat(streams, dim=-1), mask), mask))
        z = torch.cat(pooled, dim=-1)
        any_present = torch.stack([inputs[m].present for m in self.modalities], dim=1).any(dim=1)
        return zero_absent(self.out(z + self.head(z)), any_present)
