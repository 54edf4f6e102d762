"""FLOPs counted, not estimated: what one forward of a model really computed, per sample.

**Convention.**  One multiply-add is 2 FLOPs, biases, normalisations and activations are not
counted: the convention of PyTorch's own counter (``torch.utils.flop_counter.FlopCounterMode``),
which counts the dense parts here.  A sparse stage's convolutions (:class:`SiteConv2d` given active
sites) are counted as ``2 x active output sites x Cin x Cout x k x k``, the work of a sparse kernel
that computes the active sites only; the same formula over *all* sites is exactly what the torch
counter reports for the dense convolution (border sites count the full kernel in both), so the
dense and the counted column differ only by the sites a stage skipped.  The masked dense
implementation runs the full convolution, so the torch counter's figure for those convolutions is
replaced by the sites each one recorded in that very forward: no second implementation to keep in
step.  The forward runs on the masked path whichever ``sparse_impl`` the model trains with (the
gather path computes the same sites: see :mod:`.models.sparse`), so the figures do not depend on
it.  For the gather path's submanifold kernel the count is an upper bound of its work: it charges
every kept site the full 3x3 kernel, while the rulebook multiplies only the pairs of an active site
and an active neighbour (a kept site on the edge of its kept region has fewer).  Everything else (MESM's attention scores, which are computed at every site, the MLPs, the
transformers including their attention products) counts as it ran.

The model runs in eval mode (running batch-norm statistics, no dropout) with gradients enabled:
without them PyTorch's fused inference path for transformer layers bypasses the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .batch import ModalityInput
from .models.cnn import ImageCNN
from .models.sparse import SiteConv2d


@dataclass(frozen=True)
class StageFlops:
    stage: str
    dense: int
    """FLOPs of the stage computed at every site (the torch counter's figure)."""
    counted: int
    """FLOPs of the stage at the sites it computed (equal to ``dense`` for a dense stage)."""
    kept_fraction: float
    """Sites its sparse convolutions computed / sites a dense run computes (1.0 for dense stages)."""


@dataclass(frozen=True)
class FlopReport:
    stages: tuple[StageFlops, ...]
    """One row per stage the model names (``flop_stages()``), then ``other`` for the rest (heads, fusion)."""
    batch_size: int

    @property
    def dense_per_sample(self) -> float:
        return sum(s.dense for s in self.stages) / self.batch_size

    @property
    def counted_per_sample(self) -> float:
        return sum(s.counted for s in self.stages) / self.batch_size


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    """The CPU flash-attention kernel the transformer layers call is missing from torch's table."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def count_flops(model: nn.Module, inputs: dict[str, ModalityInput]) -> FlopReport:
    """Runs one forward of ``model`` on ``inputs`` and returns its per-stage FLOPs table.

    Stages are ``model.flop_stages()`` (``[(name, module), ...]``) when the model defines it, else
    its direct children.  Per-sample totals divide by the batch's rows.
    """
    stages = model.flop_stages() if hasattr(model, "flop_stages") else list(model.named_children())
    convs = [m for m in model.modules() if isinstance(m, SiteConv2d)]
    for conv in convs:  # a branch the batch skips (no valid image) must not report an older forward
        conv.last_sites, conv.last_total_sites = 0, 0
    was_training = model.training
    cnns = [m for m in model.modules() if isinstance(m, ImageCNN)]
    impls = [cnn.sparse_impl for cnn in cnns]
    model.eval()
    try:
        for cnn in cnns:  # the module tree the counter attributes FLOPs by is the masked path's
            cnn.sparse_impl = "masked"
        with torch.enable_grad(), FlopCounterMode(display=False, custom_mapping=_EXTRA) as counter:
            model(inputs)
    finally:
        model.train(was_training)
        for cnn, impl in zip(cnns, impls):
            cnn.sparse_impl = impl
    counts = counter.get_flop_counts()
    root = type(model).__name__
    names = {id(m): f"{root}.{n}" if n else root for n, m in model.named_modules()}

    def measured(module: nn.Module) -> int:
        return int(sum(counts.get(names[id(module)], {}).values()))

    rows = []
    for name, module in stages:
        sparse = [m for m in module.modules() if isinstance(m, SiteConv2d)]
        replaced = sum(measured(c) for c in sparse)
        computed = sum(2 * int(c.last_sites) * c.macs_per_site for c in sparse)
        total_sites = sum(c.last_total_sites for c in sparse)
        kept = sum(int(c.last_sites) for c in sparse) / total_sites if total_sites else 1.0
        rows.append(StageFlops(name, measured(module), measured(module) - replaced + computed, kept))
    rest = measured(model) - sum(r.dense for r in rows)
    if rest:
        rows.append(StageFlops("other", rest, rest, 1.0))
    batch_size = next(iter(inputs.values())).mask.shape[0]
    return FlopReport(tuple(rows), batch_size)


def flops_summary(report: FlopReport) -> dict[str, Any]:
    """JSON form for ``metrics.json``: per-sample totals and the per-stage table."""
    n = report.batch_size
    return {
        "convention": "2 x multiply-adds; sparse stages counted at the sites they computed",
        "rows": n,
        "dense_gflops_per_sample": report.dense_per_sample / 1e9,
        "counted_gflops_per_sample": report.counted_per_sample / 1e9,
        "stages": [{"stage": s.stage, "dense_gflops": s.dense / n / 1e9, "counted_gflops": s.counted / n / 1e9,
                    "kept_fraction": s.kept_fraction} for s in report.stages],
    }
