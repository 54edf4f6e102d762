"""One epoch of training and one pass of prediction: the only code that touches batches and gradients.

Distributed runs give ranks different numbers of batches (row groups hold different row counts);
DistributedDataParallel's ``Join`` lets a rank that ran out keep answering the others' all-reduces
instead of hanging, so no row is dropped or repeated to even them out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .data import ShardStream
from .inputs import collate


def make_loader(stream: ShardStream, batch_size: int, workers: int, persistent: bool = False) -> DataLoader:
    """``persistent``: keep the workers between passes (starting them is what costs on small splits).
    Only for streams that do not shuffle: a persistent worker keeps the copy of the stream it started
    with, so it would never see :meth:`ShardStream.set_epoch` and repeat the first epoch's order."""
    return DataLoader(stream, batch_size=batch_size, collate_fn=collate, num_workers=workers,
                      persistent_workers=persistent and workers > 0, pin_memory=False)


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
) -> float:
    """Train one epoch; returns the mean loss over this process's rows."""
    model.train()
    total, rows = 0.0, 0
    with _join(model):
        for batch in loader:
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch.inputs), batch.targets)
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            rows += len(batch)
            if on_step is not None:
                on_step(float(loss.detach()))
    return total / max(rows, 1)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device,
            loss_fn: nn.Module | None = None) -> dict[str, object]:
    """Sigmoid probabilities of every row this process reads, with ids, splits, targets and loss."""
    model.eval()
    net = model.module if isinstance(model, DistributedDataParallel) else model
    ids: list[str] = []
    splits: list[str] = []
    probs, targets = [], []
    loss_sum = 0.0
    for batch in loader:
        batch = batch.to(device)
        logits = net(batch.inputs)
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits, batch.targets)) * len(batch)
        ids += batch.ids
        splits += batch.splits
        probs.append(torch.sigmoid(logits).float().cpu().numpy())
        targets.append(batch.targets.cpu().numpy())
    return {
        "ids": ids,
        "splits": splits,
        "probs": np.concatenate(probs) if probs else np.zeros((0, 0), dtype=np.float32),
        "targets": np.concatenate(targets) if targets else np.zeros((0, 0), dtype=np.float32),
        "loss_sum": loss_sum,
    }
