"""One process or many: the device, the rank, and collecting every rank's predictions.

``torchrun --nproc_per_node N -m emoprep train ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
each process then trains a DistributedDataParallel replica on its share of the row groups (see
:class:`~emoprep.train.data.ShardStream`).  Without torchrun everything here is a no-op for a
single process, so the same code path serves a laptop and a cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import SetupError


@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Only the main process writes files and draws progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(flag: str, local_rank: int = 0) -> torch.device:
    if flag not in ("auto", "cpu", "cuda"):
        raise SetupError(f"--device must be auto, cpu or cuda, got {flag!r}")
    if flag == "cuda" and not torch.cuda.is_available():
        raise SetupError("--device cuda: no CUDA device is visible to torch (use --device cpu or auto)")
    if flag == "cpu" or (flag == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def start(device_flag: str) -> Processes:
    """Join the process group when launched by torchrun; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_flag, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Processes(rank, world, device)


def share_cpu(procs: Processes, loader_workers: int) -> None:
    """Give this process's torch threads its share of the cores: processes on one machine and their
    loader workers would otherwise each start one thread per core and slow one another down many
    times over.  Only ever lowers the count: an explicit ``OMP_NUM_THREADS`` or
    ``torch.set_num_threads`` by the caller is respected."""
    if procs.device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(min(torch.get_num_threads(), max(1, cores // local - loader_workers)))


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def gather(obj: Any, procs: Processes) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (a list of one without torchrun)."""
    if not procs.distributed:
        return [obj]
    out: list[Any] = [None] * procs.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(procs: Processes) -> None:
    if procs.distributed:
        dist.barrier()
