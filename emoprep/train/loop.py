"""One epoch of training and one pass of prediction: the only code that touches batches and gradients.

Distributed runs give ranks different numbers of batches (row groups hold different row counts);
DistributedDataParallel's ``Join`` lets a rank that ran out keep answering the others' all-reduces
instead of hanging, so no row is dropped or repeated to even them out.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .data import ShardStream
from .inputs import collate
from .precision import autocast, grad_scaler


def loader_seed(stream: ShardStream) -> int:
    """The seed of a loader's own generator: a function of the stream's seed, split, epoch and rank."""
    return zlib.crc32(f"loader:{stream.seed}:{stream.split}:{stream.epoch}:{stream.rank}".encode())


def make_loader(stream: ShardStream, batch_size: int, workers: int, persistent: bool = False,
                start_method: str | None = None) -> DataLoader:
    """``persistent``: keep the workers between passes (starting them is what costs on small splits).
    Only for streams that do not shuffle: a persistent worker keeps the copy of the stream it started
    with, so it would never see :meth:`ShardStream.set_epoch` and repeat the first epoch's order.

    The loader has its own generator, seeded by :func:`loader_seed` when it is made: iterating a
    DataLoader draws its workers' base seed from its generator, else from the global torch RNG, and
    then when a loader is first iterated (a persistent one again after ``--resume``) would shift
    every later random draw, dropout masks included.  ``start_method``: how workers start (``fork``, ``spawn``,
    ``forkserver``; None or ``default``: the platform's default)."""
    context = start_method if workers > 0 and start_method not in (None, "default") else None
    return DataLoader(stream, batch_size=batch_size, collate_fn=collate, num_workers=workers,
                      persistent_workers=persistent and workers > 0, pin_memory=False,
                      generator=torch.Generator().manual_seed(loader_seed(stream)),
                      multiprocessing_context=context)


def batches_per_epoch(stream: ShardStream, batch_size: int, workers: int) -> int:
    """Batches this rank will see: each loader worker ends its share with its own partial batch."""
    return sum(math.ceil(rows / batch_size) for rows in stream.rows_per_worker(max(workers, 1)))


def _join(model: nn.Module):
    if isinstance(model, DistributedDataParallel):
        from torch.distributed.algorithms.join import Join

        return Join([model])
    return nullcontext()


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    grad_clip: float,
    device: torch.device,
    on_step: Callable[[float], None] | None = None,
    amp: str = "off",
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """Train one epoch; returns the mean loss over this process's rows.

    ``amp``: a resolved mixed-precision mode (:mod:`.precision`), with its ``scaler`` for fp16.  The
    loss total stays on the device: the only host synchronisation per step is ``on_step``'s (the
    progress bar's) reading of the loss.
    """
    model.train()
    scaler = scaler or grad_scaler(amp, device)
    total, rows = torch.zeros((), device=device), 0
    with _join(model):
        for batch in loader:
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast(amp, device):
                logits = model(batch.inputs)
            loss = loss_fn(logits.float(), batch.targets)
            scaler.scale(loss).backward()
            if grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach() * len(batch)
            rows += len(batch)
            if on_step is not None:
                on_step(float(loss.detach()))
    return float(total) / max(rows, 1)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device,
            loss_fn: nn.Module | None = None, amp: str = "off") -> dict[str, object]:
    """Sigmoid probabilities of every row this process reads, with ids, splits, targets and loss."""
    model.eval()
    net = model.module if isinstance(model, DistributedDataParallel) else model
    ids: list[str] = []
    splits: list[str] = []
    probs, targets = [], []
    loss_sum = torch.zeros((), device=device)
    for batch in loader:
        batch = batch.to(device)
        with autocast(amp, device):
            logits = net(batch.inputs)
        logits = logits.float()
        if loss_fn is not None:
            loss_sum += loss_fn(logits, batch.targets) * len(batch)
        ids += batch.ids
        splits += batch.splits
        probs.append(torch.sigmoid(logits).cpu().numpy())
        targets.append(batch.targets.cpu().numpy())
    return {
        "ids": ids,
        "splits": splits,
        "probs": np.concatenate(probs) if probs else np.zeros((0, 0), dtype=np.float32),
        "targets": np.concatenate(targets) if targets else np.zeros((0, 0), dtype=np.float32),
        "loss_sum": float(loss_sum),
    }
