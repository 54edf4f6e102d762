"""Mixed precision for the trainer: which one a run uses, and the autocast and gradient scaler it needs.

``optim.amp`` chooses: ``off`` (float32 throughout), ``bf16`` (autocast to bfloat16: float32's
range, so no loss scaling), ``fp16`` (autocast to float16 with a gradient scaler, for GPUs without
bfloat16) or ``auto``.  ``auto`` is ``off`` on CPU, where autocast saves little and PyTorch's
bfloat16 kernels are slower than float32 on most CPUs, and ``bf16`` on a CUDA device that supports
it (else ``fp16``).  The CUDA choice is PyTorch's usual recommendation, not yet measured on the
larger demo against float32's F1 (no GPU was available when it was written): check
``benchmarks/bench_train.py --device cuda`` and a run with ``--set optim.amp=off`` before relying on it.

Batch norm statistics stay in float32 under autocast (:class:`~.models.sparse.MaskedBatchNorm2d`
promotes, cuDNN's batch norm does the same), and the loss is computed in float32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

AMP_MODES = ("auto", "off", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp(setting: str, device: torch.device) -> str:
    """The mode a run on ``device`` uses for ``optim.amp`` = ``setting``."""
    if setting != "auto":
        return setting
    if device.type != "cuda":
        return "off"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast(mode: str, device: torch.device) -> AbstractContextManager:
    """The forward's context for a resolved ``mode``."""
    if mode == "off":
        return nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[mode])


def grad_scaler(mode: str, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler that is active for fp16 only (float16 gradients underflow without it); for
    the other modes it passes everything through, so the loop has one code path."""
    return torch.amp.GradScaler(device.type, enabled=mode == "fp16")
