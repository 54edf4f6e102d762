"""Sparse convolution: computing only at *active sites*, as MESM's sparse CNN stages do.

MESM keeps, per frame or chunk, only the positions its attention selects; the later convolution
stages must then compute at those positions alone (that is the paper's FLOPs saving).  The authors
used SparseConvNet's *submanifold* convolutions: an output exists only at an active site, and it
sums over the active input sites of its 3x3 neighbourhood only.  Two implementations of the same
semantics live here, both plain PyTorch (any device, no extension to build), proven equal to each
other and to a site-by-site reference in ``tests/train/test_sparse.py``:

* **gather** (:class:`Sites`, :class:`Rulebook`, the ``*_sites`` methods): the active sites are a
  ``(S, C)`` feature matrix plus their flat indices.  A :class:`Rulebook`, built once per stage and
  shared by every convolution of it, lists for each of the 8 off-centre kernel offsets the pairs
  (active output site, active input neighbour); a convolution is then the centre tap as one matrix
  multiply over all sites plus, per offset, one gather, one matrix multiply and one scatter-add over
  that offset's pairs.  Work and memory follow the active sites, so MESM's sparsity saves wall time.
  The per-offset layout matters: gathering all 9 neighbours of every site into one ``(S, 9 C)``
  matrix would multiply zeros for every missing neighbour and copy 9x the features.  The first
  stage's input is a dense map (``Sites.every``): its attention then works in the dense layout
  (:meth:`~emoprep.train.models.mesm.TextQueriedAttention.forward_sites`), with no per-site index
  bookkeeping; the rulebook starts with the kept sites.
* **masked** (:class:`SiteConv2d` and friends given a dense ``active`` mask): convolve the masked
  dense map (inactive sites are zero, so they add nothing to any sum: exactly "active neighbours
  only"), then zero the output off the active sites.  It does the dense amount of work; it stays as
  the reference the gather path is checked against, and as the default on GPUs, where one cuDNN
  convolution over these small maps is expected (not measured: no GPU was available) to beat the
  gather path's many small kernels.

Both share the other two pieces' semantics:

* **batch norm** (:class:`MaskedBatchNorm2d`): statistics over the active sites only; zeros at
  inactive sites would otherwise drag the mean towards 0 and change with the kept fraction.
* **max-pooling** (:func:`masked_max_pool2d`, :meth:`Sites.max_pool`): a pooled site is active when
  any site under it is, and takes the max over the active sites only (SparseConvNet's sparse
  max-pooling).

Counted FLOPs (:mod:`emoprep.train.flops`) come from the active-site counts each
:class:`SiteConv2d` records per forward, whichever path ran.  In the masked path a feature map holds
exact zeros off its active sites, and ``active=None`` means "every site": the plain dense
computation, which FE2E runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SPARSE_IMPLS = ("auto", "gather", "masked")
"""Values of MESM's ``settings.sparse_impl``; ``auto`` is :func:`resolve_impl`'s choice by device and p."""


GATHER_BELOW_P = 0.8
"""``auto`` gathers on the CPU when MESM keeps less attention mass than this.  Measured with
``benchmarks/bench_mesm.py`` (one thread, trained attention, demo lengths): against FE2E the gather
path ran 2.75x at p = 0.3, 1.91x at 0.5, 1.25x at 0.7 and 0.85x at 0.9 in inference, the masked path
0.85x at 0.5 (about the same whatever p: it does the dense work); the two cross between 0.7 and 0.9
(at about 0.9 in that run, nearer 0.8 in an earlier one)."""


def resolve_impl(setting: str, device: torch.device | str, p: float = 0.5) -> str:
    """The implementation ``settings.sparse_impl`` = ``setting`` runs on ``device`` at MESM's ``p``:
    ``auto`` is ``gather`` on the CPU below :data:`GATHER_BELOW_P` (the rulebook's bookkeeping costs
    more than the sites it skips when most are kept), ``masked`` above and on a GPU, where the many
    small gathers and multiplies of the gather path are launch-bound at these map sizes while cuDNN
    runs the masked dense convolution in one kernel (not measured here: no GPU was available)."""
    if setting != "auto":
        return setting
    return "gather" if torch.device(device).type == "cpu" and p < GATHER_BELOW_P else "masked"


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


@dataclass(frozen=True)
class Sites:
    """The active sites of a batch of ``N`` feature maps of ``H x W``, as the gather path carries them.

    ``features (S, C)`` are the sites' feature vectors, ``index (S,)`` their flat positions
    ``n H W + y W + x`` in ascending order (row-major, image by image: the order of
    ``mask.nonzero()``, so each feature stays paired with its own site).  ``every`` says that
    every site of the maps is active (``index`` is ``0 .. N H W - 1``), as when the sites come
    straight from a dense map (:meth:`from_dense`): a consumer may then work in the dense layout
    (``features`` viewed as ``(N, H W, C)``) instead of looking sites up by index.
    """

    features: torch.Tensor
    index: torch.Tensor
    shape: tuple[int, int, int]
    every: bool = False

    @classmethod
    def from_dense(cls, x: torch.Tensor) -> Sites:
        """Every site of ``x (N, C, H, W)`` active."""
        n, c, h, w = x.shape
        return cls(x.permute(0, 2, 3, 1).reshape(n * h * w, c),
                   torch.arange(n * h * w, device=x.device), (n, h, w), every=True)

    def with_features(self, features: torch.Tensor) -> Sites:
        return Sites(features, self.index, self.shape, self.every)

    def select(self, keep: torch.Tensor) -> Sites:
        """The sites where ``keep (S,)`` holds."""
        rows = keep.nonzero().squeeze(1)
        return Sites(self.features.index_select(0, rows), self.index.index_select(0, rows), self.shape)

    def image(self) -> torch.Tensor:
        """``(S,)`` the image each site belongs to."""
        _, h, w = self.shape
        return torch.div(self.index, h * w, rounding_mode="floor")

    def coordinates(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(image, y, x)`` of each site, each ``(S,)``."""
        _, h, w = self.shape
        return self.image(), torch.div(self.index, w, rounding_mode="floor") % h, self.index % w

    def mask(self) -> torch.Tensor:
        """``(N, H, W)`` bool: the dense form of the active set (for attention maps and the masked path)."""
        n, h, w = self.shape
        flat = torch.zeros(n * h * w, dtype=torch.bool, device=self.index.device)
        return flat.index_fill(0, self.index, True).view(n, h, w)

    def to_dense(self) -> torch.Tensor:
        """``(N, C, H, W)`` with exact zeros off the active sites (what the masked path holds)."""
        n, h, w = self.shape
        dense = self.features.new_zeros(n * h * w, self.features.shape[1])
        dense = dense.index_copy(0, self.index, self.features)
        return dense.view(n, h, w, dense.shape[1]).permute(0, 3, 1, 2)

    def max_pool(self) -> Sites:
        """2x2 max-pooling (stride 2, floor), like :func:`masked_max_pool2d`: a pooled site exists when
        any site under it is active and takes their max."""
        n, h, w = self.shape
        ho, wo = h // 2, w // 2
        features = self.features
        image, y, x = self.coordinates()
        if h % 2 or w % 2:  # floor: the last odd row/column is dropped
            inside = (y < 2 * ho) & (x < 2 * wo)
            rows = inside.nonzero().squeeze(1)
            features, image, y, x = (t.index_select(0, rows) for t in (features, image, y, x))
        pooled = (image * ho + torch.div(y, 2, rounding_mode="floor")) * wo + torch.div(x, 2, rounding_mode="floor")
        index, slot = torch.unique(pooled, sorted=True, return_inverse=True)
        # The start value is ignored by the forward (include_self=False) but not by the backward,
        # which shares a max's gradient among every value equal to it, the start value included:
        # -inf never equals a feature (an uninitialised buffer can, and then steals half the gradient).
        out = features.new_full((len(index), features.shape[1]), float("-inf")).scatter_reduce(
            0, slot.unsqueeze(1).expand_as(features), features, "amax", include_self=False)
        return Sites(out, index, (n, ho, wo))


OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
"""The 8 off-centre offsets of a 3x3 kernel (the centre tap pairs every site with itself)."""


class Rulebook:
    """For one active set and each off-centre offset ``(dy, dx)`` of a 3x3 kernel, the pairs of an
    active output site and its active input neighbour at that offset, as row numbers into the
    sites' feature matrix.  Built once per stage: the stage's convolutions all share its active set.
    """

    def __init__(self, sites: Sites) -> None:
        n, h, w = sites.shape
        count = sites.index.shape[0]
        device = sites.index.device
        self.sites = count
        self.total_sites = n * h * w
        image, y, x = sites.coordinates()
        # Row number of every active site in a map padded by one on each side (-1: no active site),
        # so that a neighbour lookup never leaves the map or wraps into the next row or image.
        padded = (image * (h + 2) + y + 1) * (w + 2) + x + 1
        lookup = torch.full((n * (h + 2) * (w + 2),), -1, dtype=torch.long, device=device)
        lookup[padded] = torch.arange(count, device=device)
        self.pairs: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        """``(tap, output rows, input rows)`` per offset that has at least one pair; ``tap = 3 ky + kx``
        with ``(ky, kx) = (dy + 1, dx + 1)``, the kernel position that multiplies that neighbour."""
        for dy, dx in OFFSETS:
            neighbour = lookup[padded + dy * (w + 2) + dx]
            out = (neighbour >= 0).nonzero().squeeze(1)
            if len(out):
                self.pairs.append((3 * (dy + 1) + dx + 1, out, neighbour.index_select(0, out)))


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

    def forward_sites(self, features: torch.Tensor, rules: Rulebook) -> torch.Tensor:
        """The same convolution on the gather path: ``(S, Cin)`` -> ``(S, Cout)`` at the rulebook's sites.

        The centre tap is one multiply over every site; each other tap multiplies only the sites
        that have an active neighbour there and adds the result into their rows.
        """
        if self.kernel_size != (3, 3):
            raise ValueError(f"the gather path implements 3x3 kernels, this one is {self.kernel_size}")
        self.last_sites, self.last_total_sites = rules.sites, rules.total_sites
        return _RulebookConv.apply(features, self.weight, self.bias, rules)


CENTRE = 4
"""The centre tap's index in a 3x3 kernel's taps, numbered ``3 ky + kx``."""


def _taps(weight: torch.Tensor) -> torch.Tensor:
    """A ``(Cout, Cin, 3, 3)`` weight as ``(Cin, 9, Cout)``: tap ``t`` is the ``(Cin, Cout)`` matrix
    ``taps[:, t]`` (rows strided, columns contiguous: BLAS takes it as it is).  One 2-D transpose,
    about 3x faster than permuting the 4-D weight to tap-major order."""
    c_out, c_in = weight.shape[:2]
    return weight.reshape(c_out, c_in * 9).t().contiguous().view(c_in, 9, c_out)


class _RulebookConv(torch.autograd.Function):
    """A submanifold 3x3 convolution over a :class:`Rulebook`, with a hand-written backward.

    Forward: the centre tap as one multiply over every site, then per offset one gather of the
    input neighbours, one multiply by that tap's ``(Cin, Cout)`` matrix and one scatter-add into the
    output rows.  Backward mirrors it per offset (gather the output gradient's rows, two multiplies,
    one scatter-add into a single input-gradient buffer).  Autograd would do the same arithmetic
    but keep every gathered neighbour matrix alive until the backward and zero-fill one full-size
    input gradient per offset; here only the input and the weights are saved and the gathers are
    redone, which measured faster and holds less memory.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                rules: Rulebook) -> torch.Tensor:
        # Under autocast the multiplies run in its dtype, as a convolution's would; the backward
        # (which autocast does not reach) repeats them in the same dtype and hands each gradient back
        # in its input's dtype (float32 weights keep float32 gradients).
        device = features.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else features.dtype
        ctx.dtypes = (features.dtype, weight.dtype, None if bias is None else bias.dtype)
        with torch.autocast(device, enabled=False):
            features = features.to(dtype)
            taps = _taps(weight.to(dtype))
            centre = taps[:, CENTRE]
            out = features @ centre if bias is None else torch.addmm(bias.to(dtype), features, centre)
            for tap, rows, neighbours in rules.pairs:
                out.index_add_(0, rows, features.index_select(0, neighbours) @ taps[:, tap])
        ctx.save_for_backward(features, taps)
        ctx.rules = rules
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        features, taps = ctx.saved_tensors
        rules: Rulebook = ctx.rules
        features_dtype, weight_dtype, bias_dtype = ctx.dtypes
        grad = grad.to(features.dtype).contiguous()
        grad_taps = torch.zeros_like(taps)
        grad_features = grad @ taps[:, CENTRE].t()
        grad_taps[:, CENTRE] = features.t() @ grad
        for tap, rows, neighbours in rules.pairs:
            g = grad.index_select(0, rows)
            grad_features.index_add_(0, neighbours, g @ taps[:, tap].t())
            grad_taps[:, tap] = features.index_select(0, neighbours).t() @ g
        c_in, _, c_out = grad_taps.shape
        grad_weight = grad_taps.view(c_in * 9, c_out).t().reshape(c_out, c_in, 3, 3).to(weight_dtype)
        grad_bias = None
        if bias_dtype is not None:  # summed in float32 at least: a bfloat16 sum over thousands of sites drifts
            grad_bias = grad.sum(dim=0, dtype=torch.promote_types(grad.dtype, torch.float32)).to(bias_dtype)
        return grad_features.to(features_dtype), grad_weight, grad_bias, None


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
        normed = self.forward_sites(x.permute(0, 2, 3, 1)[active])
        n, c, h, w = x.shape
        return x.new_zeros(n, h, w, c).index_put((active,), normed).permute(0, 3, 1, 2)

    def forward_sites(self, features: torch.Tensor) -> torch.Tensor:
        """Batch norm of the active sites' ``(S, C)`` features (both paths end here)."""
        sites = features.to(torch.promote_types(features.dtype, torch.float32))
        if not self.training or not len(sites):  # no site at all (no image): nothing to learn statistics from
            normed = F.batch_norm(sites, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                  self.eps)
            return normed.to(features.dtype)
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        if len(sites) > 1:  # PyTorch's kernel: batch statistics, running ones updated with the unbiased variance
            normed = F.batch_norm(sites, self.running_mean, self.running_var, self.weight, self.bias, True, factor,
                                  self.eps)
        else:  # one site: variance 0, which the kernel refuses in training; the site normalises to the bias
            mean = sites.mean(dim=0)
            with torch.no_grad():
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(torch.zeros_like(self.running_var), factor)
            normed = (sites - mean) * torch.rsqrt(torch.full_like(mean, self.eps)) * self.weight + self.bias
        return normed.to(features.dtype)


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
