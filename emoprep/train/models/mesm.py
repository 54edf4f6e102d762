"""MESM: FE2E plus cross-modal sparse CNN blocks (paper: IEMOCAP 84.4 Acc at p=0.7, MOSEI 66.8 WAcc at
p=0.5, with fewer FLOPs than FE2E).

Before each of the three CNN stages of the face and log-mel CNNs (64->128->256->512 channels), a
text-queried attention scores every position of each frame/chunk (equations 1-4 of the paper):

    M_q = tanh((W_m M + b_m) + W_q q)          q: the text branch's CLS output for the row
    M_i = softmax(W_i M_q + b_i)               over the H x W positions of each frame/chunk
    M_ns = nucleus(M_i, p)                     smallest set of positions with attention mass >= p
    M_o = M_ns * M                             the stage then computes at the kept sites only

with hidden size ``k`` = the stage's input channels (64/128/256 at ``cnn_width`` 1).  In the second
and third stages the softmax and the nucleus run over the sites still active after the previous
stage (its kept sites, pooled), as in the authors' sparse tensors.  The stages themselves are
submanifold sparse convolutions (:mod:`.sparse`).

**Each kept feature stays at its own site (the authors' code misplaces them; do not port that).**
In the authors' ``sparse_e2e.py`` the first sparse step builds its input from two different
orderings of the kept mask ``attn (frames, H, W)``: the features come from
``bs, y, x = attn.nonzero(as_tuple=True); features = maps[bs, :, y, x]``, frame-major (sorted by
frame, then row, then column), while the locations come from ``attn.permute(1, 2, 0).nonzero()``,
row-major over the grid (sorted by row, then column, then frame).  SparseConvNet pairs the i-th
feature with the i-th location, so the set of kept sites is right but most features land at the
wrong frame and position (only a feature whose rank happens to be the same in both orders stays
put; with one frame per batch the orders agree).  emoprep keeps every feature at the frame and
position it was computed at, which is what the paper's ``M_o = M_ns * M`` says; a test that
"matches the authors" by permuting the features would be reproducing their bug.

**How the attention learns.**  ``M_ns`` is a hard 0/1 selection, so the paper's ``M_o = M_ns * M``
has no gradient with respect to the attention; the authors' code computed the selection from a
detached copy and the attention layers never received a gradient.  Here the kept features are
multiplied by a straight-through gate

    g = M_ns * exp(log M_i - stopgrad(log M_i)),    M_o = g * M,

whose forward value is exactly ``M_ns`` (``exp(0) = 1``; the paper's forward, bit for bit) and whose
gradient is that of scaling each kept feature by its attention weight relative to its current value,
``M_ns * M_i / stopgrad(M_i)``: ``dM_o[j]/dz[k] = M_ns[j] M[j] (1[j=k] - M_i[k])`` for the attention
logits ``z = W_i M_q + b_i``.  A kept site whose features help the loss has its attention raised
(and, through the softmax, the others lowered), so ``W_m``, ``W_q``, ``W_i`` and the text query
all learn which sites to keep.  Working in log space keeps the gradient scale independent of the
number of positions (the weights themselves are ~1/(H W)) and never divides by an underflowed 0.
(``b_i`` gets no gradient: a softmax over positions ignores a shift shared by all of them, so the
paper's ``b_i`` is redundant; it is kept for fidelity to the equations.)

**Query.**  A row with text queries with its text CLS output (the text transformer's, or with
``text_encoder: albert`` ALBERT's pooled ``[CLS]`` output projected to ``d_model``).  A row without text, and every row
when the model has no text modality, queries with a learned vector instead (an extension: the paper
only runs MESM with text).  The model records, when ``record_attention`` is set, each stage's
attention and kept sites for the attention pictures in ``last_attention``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import SetupError
from ..batch import InputSpec, ModalityInput
from . import ModelContext, check_one_of, register
from .cnn import ImageCNN
from .fe2e import FE2E, FE2ESettings, ImageBranch
from .sparse import SPARSE_IMPLS, Sites, nucleus


@dataclass(frozen=True)
class MESMSettings(FE2ESettings):
    p: float = 0.5
    """Attention mass the nucleus keeps per frame/chunk and stage (paper: 0.7 IEMOCAP, 0.5 MOSEI);
    1.0 keeps every site, i.e. FE2E's computation with attention gates."""
    sparse_impl: str = "auto"
    """How the sparse stages compute at the kept sites only (see :mod:`.sparse`): ``gather`` (rulebook
    gathers and matrix multiplies over the active sites: the work follows the kept fraction),
    ``masked`` (dense convolutions of masked maps: the reference, FE2E's cost) or ``auto`` (gather
    on CPU below p = 0.8, else masked: :func:`.sparse.resolve_impl`).  Same logits either way, to
    rounding."""

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.p <= 1.0:
            raise SetupError(f"settings.p must be in (0, 1], got {self.p}")
        check_one_of(self, "sparse_impl", SPARSE_IMPLS)


class TextQueriedAttention(nn.Module):
    """Equations 1-4 for one stage: scores, nucleus selection, the straight-through gate (see above).

    After each forward, ``last`` holds ``(attention (N, H, W), kept (N, H, W))`` for the images it
    saw (detached), which the model turns into the attention pictures.
    """

    def __init__(self, channels: int, hidden: int, query_dim: int, p: float) -> None:
        super().__init__()
        self.w_m = nn.Linear(channels, hidden)
        self.w_q = nn.Linear(query_dim, hidden, bias=False)
        self.w_i = nn.Linear(hidden, 1)
        self.p = p
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, active: torch.Tensor | None,
                query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked path: ``x (N, C, H, W)`` with zeros off ``active (N, H, W)``, ``query (N, dq)`` ->
        ``(x gated to the kept sites, kept (N, H, W))``."""
        n, _, h, w = x.shape
        m_q = torch.tanh(self.w_m(x.permute(0, 2, 3, 1)) + self.w_q(query)[:, None, None, :])
        scores = self.w_i(m_q).reshape(n, h * w)
        gate, kept = self._select(scores, None if active is None else active.reshape(n, h * w), (h, w))
        return x * gate.view(n, 1, h, w), kept.view(n, h, w)

    def forward_sites(self, sites: Sites, query: torch.Tensor) -> Sites:
        """Gather path: the same scores computed at the active sites only; returns the kept sites,
        gated."""
        if sites.every:
            return self._forward_every_site(sites, query)
        n, h, w = sites.shape
        m_q = torch.tanh(self.w_m(sites.features) + self.w_q(query).index_select(0, sites.image()))
        site_scores = self.w_i(m_q).squeeze(1)
        scores = site_scores.new_full((n * h * w,), torch.finfo(site_scores.dtype).min)
        scores = scores.index_copy(0, sites.index, site_scores).view(n, h * w)
        gate, kept = self._select(scores, sites.mask().view(n, h * w), (h, w))
        chosen = sites.select(kept.view(-1).index_select(0, sites.index))
        return chosen.with_features(chosen.features * gate.view(-1, 1).index_select(0, chosen.index))

    def _forward_every_site(self, sites: Sites, query: torch.Tensor) -> Sites:
        """:meth:`forward_sites` when every site is active (the first stage, whose input is the dense
        map): the same arithmetic in the dense layout, so the query broadcasts over each image's
        positions instead of being copied to every site, the scores need no scattering into maps nor
        masking, and the kept sites' rows are their flat positions.  Same values, bit for bit (a
        test checks it against the general path, gradients included)."""
        n, h, w = sites.shape
        m_q = self.w_m(sites.features).view(n, h * w, self.w_m.out_features)
        m_q = m_q.add_(self.w_q(query).unsqueeze(1)).tanh_()  # in place: the products are not kept for the backward
        scores = self.w_i(m_q).view(n, h * w)
        gate, kept = self._select(scores, None, (h, w))
        rows = kept.view(-1).nonzero().squeeze(1)
        features = sites.features.index_select(0, rows) * gate.view(-1).index_select(0, rows).unsqueeze(1)
        return Sites(features, rows, sites.shape)

    def _select(self, scores: torch.Tensor, sites: torch.Tensor | None,
                size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image, ``scores (N, L)`` over the positions ``sites (N, L)`` (None: all) -> the
        straight-through gate ``(N, L)`` and the kept positions ``(N, L)``."""
        if sites is not None:  # finite fill: -inf would make the gate's log-space gradient NaN
            scores = scores.masked_fill(~sites, torch.finfo(scores.dtype).min)
        log_attention = F.log_softmax(scores, dim=-1)
        attention = log_attention.exp()
        kept = nucleus(attention.detach(), self.p, sites)
        gate = torch.exp(log_attention - log_attention.detach()) * kept
        self.last = (attention.detach().view(-1, *size), kept.view(-1, *size))
        return gate, kept


@register("mesm", MESMSettings,
          "MESM: FE2E with text-queried sparse cross-modal CNN stages, nucleus selection at p (MESM paper)",
          family="end_to_end")
class MESM(FE2E):
    def __init__(self, inputs: dict[str, InputSpec], n_classes: int, settings: MESMSettings,
                 context: ModelContext) -> None:
        super().__init__(inputs, n_classes, settings, context)  # validates the settings, p included
        needed = any(isinstance(b, ImageBranch) for b in self.branches.values())
        self.default_query = nn.Parameter(torch.randn(settings.d_model) * 0.02) if needed else None
        """The query of rows without text (None without image inputs: nothing to attend over)."""
        self.record_attention = False
        """Set it to fill :attr:`last_attention` on each forward."""
        self.last_attention: list[dict[str, object]] = []
        """Per image modality and stage: ``{"modality", "stage" (1-3), "attention" (B, T, H, W),
        "kept" (B, T, H, W) bool}``, zeros at masked positions."""

    def image_cnn(self, spec: InputSpec, settings: MESMSettings) -> ImageCNN:
        def selector(channels: int) -> TextQueriedAttention:
            return TextQueriedAttention(channels, channels, settings.d_model, settings.p)

        return ImageCNN(spec, settings.cnn_width, selector, settings.sparse_impl, settings.p)

    def query(self, inputs: dict[str, ModalityInput],
              results: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor | None:
        if self.default_query is None:
            return None
        rows = next(iter(inputs.values())).mask.shape[0]
        default = self.default_query.expand(rows, -1)
        if "text" not in results:
            return default
        return torch.where(inputs["text"].present.unsqueeze(1), results["text"][1], default)

    def forward(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        logits = super().forward(inputs)
        if self.record_attention:
            self.last_attention = [
                {"modality": m, "stage": i + 1, **self._pictures(stage.select, inputs[m].mask)}
                for m, branch in self.branches.items() if isinstance(branch, ImageBranch)
                for i, stage in enumerate(branch.cnn.stages)
            ]
        return logits

    @staticmethod
    def _pictures(select: TextQueriedAttention, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stage's per-image maps of this forward, scattered back to ``(B, T, H, W)`` by the mask."""
        attention, kept = select.last
        shape = (*mask.shape, *attention.shape[1:])
        return {"attention": attention.new_zeros(shape).index_put((mask,), attention),
                "kept": kept.new_zeros(shape).index_put((mask,), kept)}
