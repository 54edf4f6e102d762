"""Building blocks the baseline models share.

Every block keeps the batch contract of :mod:`emoprep.train.batch`: padded positions and absent rows
never count.  Pooling divides by real positions only, attention never sees a key row that is masked
everywhere (PyTorch answers NaN there), and fusion counts only the modalities a row really has.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import SetupError
from ..batch import InputSpec, ModalityInput


class InputProjection(nn.Module):
    """Brings one modality to width ``d``: the models then treat dense and token inputs alike.

    Dense features go through ``Linear`` + ``LayerNorm`` (hand-crafted features have very different
    scales: DisVoice energies vs. 0/1 action-unit presences).  Token ids get a trainable embedding
    whose padding id 0 maps to the zero vector.
    """

    def __init__(self, spec: InputSpec, d: int, norm: bool = True) -> None:
        super().__init__()
        self.kind = spec.kind
        if spec.kind == "tokens":
            if spec.vocab_size < 2:
                raise SetupError(f"{spec.modality}: token input needs vocab_size >= 2, got {spec.vocab_size}")
            self.proj: nn.Module = nn.Embedding(spec.vocab_size, d, padding_idx=0)
        elif spec.kind == "dense":
            if spec.dim < 1:
                raise SetupError(f"{spec.modality}: dense input needs dim >= 1, got {spec.dim}")
            self.proj = nn.Sequential(nn.Linear(spec.dim, d), nn.LayerNorm(d)) if norm else nn.Linear(spec.dim, d)
        else:
            raise SetupError(f"{spec.modality}: unknown input kind {spec.kind!r}")

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)``; padded positions are zero so that nothing downstream can read them."""
        if self.kind == "tokens":
            values = values.masked_fill(~mask, 0)
        return self.proj(values) * mask.unsqueeze(-1)


def nonempty(inputs: dict[str, ModalityInput]) -> dict[str, ModalityInput]:
    """Gives a zero-width modality (no row of the batch has it) one padded position, so that packing,
    convolution and attention all see a real tensor; the rows stay absent."""
    out = {}
    for m, x in inputs.items():
        if x.mask.shape[1] == 0:
            x = ModalityInput(
                x.values.new_zeros((x.values.shape[0], 1, *x.values.shape[2:])),
                x.mask.new_zeros((x.mask.shape[0], 1)),
            )
        out[m] = x
    return out


def compact(x: ModalityInput) -> ModalityInput:
    """Real positions moved to the front of each row, in order: a recurrence reads the first
    ``length`` steps, but real positions can have holes (a frame without a face, a silent window)."""
    order = torch.argsort((~x.mask).to(torch.int8), dim=1, stable=True)
    index = order.view(*order.shape, *([1] * (x.values.dim() - 2))).expand_as(x.values)
    return ModalityInput(torch.gather(x.values, 1, index), torch.gather(x.mask, 1, order))


def sinusoidal_encoding(length: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    """``(length, d)`` fixed sine/cosine positions (Vaswani et al.): no parameters, any length, and a
    real position keeps its code however far the batch is padded."""
    pos = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d))
    pe = torch.zeros(length, d, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x (B, T, d)`` over real positions: ``(B, d)``, zero for a row with none, so padding
    length never changes a row's summary and an absent row gives no made-up vector."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def attention_padding_mask(mask: torch.Tensor) -> torch.Tensor:
    """Key padding mask (True = ignore) that is safe for absent rows.

    A row whose keys are all masked makes softmax return NaN, and the NaN spreads through the
    gradients of the whole batch.  Such a row gets position 0 unmasked instead; its output is garbage
    but finite, and the caller must drop it (pool with the real mask, or :func:`zero_absent`).
    """
    pad = ~mask
    pad[:, 0] &= mask.any(dim=1)
    return pad


def zero_absent(x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Zeroes the rows of ``x (B, ...)`` whose modality is absent: what :func:`attention_padding_mask`
    let through for them must not reach the rest of the model."""
    return x * present.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def check_heads(d: int, heads: int) -> None:
    """Multi-head attention splits ``d`` evenly; say so before the run instead of deep inside torch."""
    if heads < 1 or d % heads:
        raise SetupError(f"model width {d} must be a positive multiple of heads={heads}")


class LateFusion(nn.Module):
    """Fuses per-modality logits with learned weights, softmax-normalised over the modalities present.

    A row missing a modality is the weighted mean of the others (no fake contribution from the
    absent branch's bias), and a row with no modality at all gets logits 0, i.e. p = 0.5 everywhere.
    The weights start equal, so training starts from the plain average.
    """

    def __init__(self, n_modalities: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(n_modalities))

    def forward(self, logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """``logits (B, M, C)``, ``present (B, M)`` bool -> ``(B, C)``."""
        w = torch.exp(self.weights - self.weights.max()) * present.to(logits.dtype)
        total = w.sum(dim=1, keepdim=True)
        w = w / torch.where(total > 0, total, torch.ones_like(total))
        return (w.unsqueeze(-1) * logits).sum(dim=1)


class LinearFusion(nn.Module):
    """The MESM authors' fusion: ``Linear(M, 1, bias=False)`` over the logits stacked on a last axis,
    ``z = sum_m w_m z_m`` per class, with free (any sign, unnormalised) weights and ``nn.Linear``'s
    initialisation, ``U(-1/sqrt(M), 1/sqrt(M))``.  A model of one modality returns that branch's
    logits unweighted, as theirs did.

    Their rows always had every modality (a centre crop stood in for a missing face); here a row can
    lack one, and the absent branch's output (finite garbage, see :func:`attention_padding_mask`)
    must not count.  An absent modality contributes logit 0, "no evidence either way", and receives
    no gradient: the row's logits are the weighted sum over the modalities it has, and a row with
    none gets 0, p = 0.5 everywhere.  Not renormalised: with free weights the present ones' sum can
    be 0 or negative, so dividing by it could flip or blow up the row's logits.  A row with fewer
    modalities thus gets logits of smaller magnitude on average; the model trains on such rows, and
    the per-class thresholds are picked on validation rows with the same mix.
    """

    def __init__(self, n_modalities: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_modalities, 1, bias=False) if n_modalities > 1 else None

    def forward(self, logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """``logits (B, M, C)``, ``present (B, M)`` bool -> ``(B, C)``."""
        logits = torch.where(present.unsqueeze(-1), logits, torch.zeros_like(logits))
        if self.linear is None:
            return logits[:, 0]
        return self.linear(logits.transpose(1, 2)).squeeze(-1)


class LateFusionModel(nn.Module):
    """One branch per modality, each giving its own logits, fused over the modalities each row has:
    the shape of LF-LSTM and LF-TRANS, which differ only in their branches."""

    def __init__(self, branches: dict[str, nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleDict(branches)
        self.fusion = LateFusion(len(branches))

    def forward(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        inputs = nonempty(inputs)
        logits = torch.stack([branch(inputs[m]) for m, branch in self.branches.items()], dim=1)
        present = torch.stack([inputs[m].present for m in self.branches], dim=1)
        return self.fusion(logits, present)
