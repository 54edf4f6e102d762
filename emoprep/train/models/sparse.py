"""Sparse convolution on dense tensors: computing only at *active sites*, as MESM's sparse CNN stages do.

MESM keeps, per frame or chunk, only the positions its attention selects; the later convolution
stages must then compute at those positions alone (that is the paper's FLOPs saving).  The authors
used SparseConvNet's *submanifold* convolutions: an output exists only at an active site, and it
sums over the active input sites of its 3x3 neighbourhood only.  Here the same semantics run on
ordinary dense tensors, so that any device and ``torch.compile`` handle them and no extension is
needed:

* **convolution** (:class:`SiteConv2d`): convolve the masked input (inactive sites are zero, so they
  add nothing to any sum: exactly "active neighbours only"), then zero the output off the active
  sites (outputs exist only where the input was active: the active set does not grow).
  ``tests/train/test_sparse.py`` proves it equal to a gather-and-sum reference sparse convolution.
* **batch norm** (:class:`MaskedBatchNorm2d`): statistics over the active sites only; zeros at
  inactive sites would otherwise drag the mean towards 0 and change with the kept fraction.
* **max-pooling** (:func:`masked_max_pool2d`): a pooled site is active when any site under it is,
  and takes the max over the active sites only (SparseConvNet's sparse max-pooling).

The dense tensors do not make the arithmetic cheaper on a GPU; the *counted* FLOPs (what a sparse
kernel does: see :mod:`emoprep.train.flops`) come from the active-site counts each
:class:`SiteConv2d` records per forward.  Throughout, a feature map holds exact zeros off its active
sites, and ``active=None`` means "every site": the plain dense computation, which FE2E runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def nucleus(attention: torch.Tensor, p: float, active: torch.Tensor | None = None) -> torch.Tensor:
    """Per row of ``attention (N, L)``, the smallest set of positions whose mass reaches ``p``.

    Positions are taken in descending attention, ties by position (a stable sort, so the choice is
    deterministic); a position is kept while the mass *before* it is ``< p``, i.e. all those whose
    running sum stays below ``p`` plus the one that crosses it (the paper's rule).  Writing it with
    the exclusive running sum also covers a row whose total falls short of ``p`` by rounding: it
    keeps everything instead of failing.  ``p >= 1`` keeps every position, whatever the rounding of
    the sum.  ``active (N, L)`` restricts the choice to those positions (the caller gives inactive
    positions attention 0).  Returns a bool ``(N, L)``; every row keeps at least one position.
    """
    if p >= 1.0:
        return torch.ones_like(attention, dtype=torch.bool) if active is None else active.clone()
    ordered, order = attention.sort(dim=-1, descending=True, stable=True)
    before = ordered.cumsum(dim=-1) - ordered  # mass ahead of each position; exactly 0 for the first
    kept = torch.zeros_like(attention, dtype=torch.bool).scatter(-1, order, before < p)
    return kept if active is None else kept & active


class SiteConv2d(nn.Conv2d):
    """Stride-1 "same" convolution with submanifold semantics when given ``active (N, H, W)``.

    Records per forward how many output sites it computed (``last_sites``) out of how many a dense
    run computes (``last_total_sites``), so that FLOPs are counted from what really ran.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        if kernel_size % 2 == 0:
            raise ValueError(f"a same-size site convolution needs an odd kernel, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.last_sites: torch.Tensor | int = 0
        self.last_total_sites = 0

    @property
    def macs_per_site(self) -> int:
        """Multiply-adds for one output site: ``Cin x Cout x k x k`` (bias not counted, as in torch's
        own FLOP counter; border sites are counted with the full kernel on both sides, too)."""
        return self.in_channels * self.out_channels * self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        n, _, h, w = x.shape
        self.last_total_sites = n * h * w
        if active is None:
            self.last_sites = n * h * w
            return super().forward(x)
        self.last_sites = active.sum().detach()
        keep = active.unsqueeze(1).to(x.dtype)
        return super().forward(x * keep) * keep


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose statistics, when given ``active (N, H, W)``, cover the active sites only.

    It works on the gathered ``(sites, C)`` features, as a sparse library's batch norm does, and
    updates the running statistics the way ``BatchNorm2d`` does (unbiased variance, ``momentum``).
    Unlike ``F.batch_norm`` it accepts a single active site in training (variance 0): a short clip
    at a small ``p`` can leave one.  With every site active it equals ``BatchNorm2d`` to rounding.
    Statistics are taken in float32 at least, whatever the input's dtype (as cuDNN's batch norm does under
    autocast).  Affine, with running statistics: the only way the CNNs build it.
    """

    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        if active is None:
            return super().forward(x)
        sites = x.permute(0, 2, 3, 1)[active]
        sites = sites.to(torch.promote_types(sites.dtype, torch.float32))
        if self.training and len(sites):  # no site at all (no image): nothing to learn statistics from
            mean, var = sites.mean(dim=0), sites.var(dim=0, unbiased=False)
            self._update_running(mean.detach(), var.detach(), sites.shape[0])
        else:
            mean, var = self.running_mean, self.running_var
        normed = (sites - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        n, c, h, w = x.shape
        return x.new_zeros(n, h, w, c).index_put((active,), normed.to(x.dtype)).permute(0, 3, 1, 2)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * (count / max(count - 1, 1)), factor)


def masked_max_pool2d(x: torch.Tensor,
                      active: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """2x2 max-pooling (stride 2, floor) of ``x (N, C, H, W)`` and of its active-site mask.

    A pooled site is active when any site under it was, and holds the max over the active sites
    only (inactive ones are -inf for the max, so a negative active value is never hidden by a zero).
    """
    if active is None:
        return F.max_pool2d(x, 2), None
    pooled = F.max_pool2d(active.unsqueeze(1).to(x.dtype), 2).squeeze(1) > 0
    out = F.max_pool2d(x.masked_fill(~active.unsqueeze(1), float("-inf")), 2)
    return out.masked_fill(~pooled.unsqueeze(1), 0.0), pooled
