"""A streaming torch dataset over emoprep shards, usable by any project that reads them.

Why streaming: a MOSEI split with face crops and log-mel chunks is tens of GB, so the dataset never
holds a split, only the row group being decoded plus a bounded shuffle buffer.  Row groups (16 rows
each, see :mod:`emoprep.extraction.engine.writer`) are the unit of work: each epoch they are shuffled with the
seed and the epoch number, then dealt out to distributed ranks and, within a rank, to DataLoader
workers, always to whoever holds the fewest rows so far.  Every rank and worker computes the same
deal, so each row is read exactly once per epoch with no communication.

Example (any project)::

    from torch.utils.data import DataLoader
    from emoprep.train.data import ShardStream

    stream = ShardStream("shards/demo", split="train", columns=["utterance_id", "acoustic", "emotions"],
                         shuffle=True, seed=0)
    for epoch in range(3):
        stream.set_epoch(epoch)
        for rows in DataLoader(stream, batch_size=None, num_workers=2):  # rows: one dict per utterance
            ...

By default a row is a dict of Python/numpy values (matrices as ``(n, d)`` arrays, null as None);
pass ``transform`` (a picklable callable from a ``pyarrow.Table`` of one row group to a list of
examples) to turn row groups into tensors in the loader workers instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from torch.utils.data import IterableDataset, get_worker_info

from ..format.manifest import StorageOptions, shard_folder
from ..format.reader import RowGroup, read_row_group, row_groups
from ..format.storage import Folder


def deal(groups: list[RowGroup], parts: int) -> list[list[RowGroup]]:
    """Deal row groups to ``parts`` holders, each to the one with the fewest rows so far (ties: lowest index)."""
    hands: list[list[RowGroup]] = [[] for _ in range(parts)]
    rows = [0] * parts
    for group in groups:
        i = min(range(parts), key=lambda k: (rows[k], k))
        hands[i].append(group)
        rows[i] += group.rows
    return hands


def column_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """One value per row: ``list<fixed_size_list<float>>`` rows as ``(n, d)`` arrays (NaN where a
    value or a whole element is null), other columns as Python values.  Vectorised: one conversion
    per column, no per-element Python floats.  (``flatten()`` would silently drop null elements and
    shift the rows after them, so the child arrays are addressed through the offsets instead.)"""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    typ = arr.type
    if not (pa.types.is_list(typ) and pa.types.is_fixed_size_list(typ.value_type)):
        return arr.to_pylist()
    width = typ.value_type.list_size
    child = arr.values  # every element of the list column, null elements included
    matrix = child.values.to_numpy(zero_copy_only=False).reshape(-1, width)[child.offset : child.offset + len(child)]
    if child.null_count:
        matrix = matrix.astype(np.result_type(matrix.dtype, np.float16), copy=True)
        matrix[child.is_null().to_numpy(zero_copy_only=False)] = np.nan
    offsets = arr.offsets.to_numpy()
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return [matrix[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(arr))]


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The default transform: one dict per row, matrices as numpy arrays."""
    columns = {name: column_values(table.column(name)) for name in table.column_names}
    return [{name: values[i] for name, values in columns.items()} for i in range(table.num_rows)]


def whole_row_groups(table: pa.Table) -> list[pa.Table]:
    """A transform that yields each row group as one table (for passes that reduce over a split)."""
    return [table]


def process_group_rank() -> tuple[int, int] | None:
    """``(rank, world_size)`` of this process's initialised torch.distributed group, else None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


class ShardStream(IterableDataset):
    """Rows of one split of a shard folder, streamed row group by row group.

    ``rank``/``world_size`` not given are taken, when the stream is made, from the torch.distributed
    process group if one is initialised (torchrun), else a single process (the whole split): make
    the stream after ``init_process_group``.  They are resolved in the process that makes the
    stream and travel with it into DataLoader workers, which under the spawn and forkserver start
    methods (macOS; Linux from Python 3.14) have no process group of their own.  ``folder`` may be
    a URL (``s3://bucket/prefix``) with ``storage_options`` for its store: every rank and worker
    then reads its row groups from the store with ranged reads, and the deal is the same.  Call
    :meth:`set_epoch` before each epoch so that the shuffle differs between epochs and agrees
    between ranks.
    """

    def __init__(
        self,
        folder: str | Path | Folder,
        split: str,
        columns: list[str] | None = None,
        *,
        transform: Callable[[pa.Table], list[Any]] = table_rows,
        shuffle: bool = False,
        seed: int = 0,
        buffer_size: int = 1024,
        rank: int | None = None,
        world_size: int | None = None,
        storage_options: StorageOptions = None,
    ) -> None:
        super().__init__()
        self.folder = shard_folder(folder, storage_options)
        self.split = split
        self.columns = list(columns) if columns is not None else None
        self.transform = transform
        self.shuffle = shuffle
        self.seed = seed
        self.buffer_size = max(1, buffer_size)
        self.groups = row_groups(self.folder, split)
        self.epoch = 0
        self._explicit = rank is not None or world_size is not None
        group = None if self._explicit else process_group_rank()
        self.rank = rank if rank is not None else (group[0] if group else 0)
        self.world_size = world_size if world_size is not None else (group[1] if group else 1)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"ShardStream: rank {self.rank} is not in 0..{self.world_size - 1} "
                             f"(world_size {self.world_size})")

    @property
    def rows(self) -> int:
        """Rows of the split, over all ranks."""
        return sum(g.rows for g in self.groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rank_and_world(self) -> tuple[int, int]:
        """The rank and world size this stream reads for (fixed when it was made)."""
        if not self._explicit:
            group = process_group_rank()  # None in a spawned loader worker: nothing to check there
            if group is not None and group != (self.rank, self.world_size):
                raise RuntimeError(
                    f"this ShardStream of {self.split!r} was made for rank {self.rank} of {self.world_size} before "
                    f"torch.distributed was initialised (now rank {group[0]} of {group[1]}): make it after "
                    "init_process_group, or pass rank= and world_size="
                )
        return self.rank, self.world_size

    def rank_groups(self) -> list[RowGroup]:
        """The row groups this rank reads this epoch (shuffled with the seed and the epoch)."""
        groups = list(self.groups)
        if self.shuffle:
            random.Random(f"{self.seed}:{self.epoch}").shuffle(groups)
        rank, world = self.rank_and_world()
        return deal(groups, world)[rank]

    def my_groups(self) -> list[RowGroup]:
        """The row groups this rank and loader worker read this epoch."""
        mine = self.rank_groups()
        info = get_worker_info()
        if info is not None and info.num_workers > 1:
            mine = deal(mine, info.num_workers)[info.id]
        return mine

    def rows_per_worker(self, workers: int) -> list[int]:
        """Rows each of ``workers`` loader workers of this rank reads this epoch."""
        return [sum(g.rows for g in hand) for hand in deal(self.rank_groups(), workers)]

    def _examples(self, groups: list[RowGroup]) -> Iterator[Any]:
        for group in groups:
            yield from self.transform(read_row_group(group, self.columns))

    def __iter__(self) -> Iterator[Any]:
        groups = self.my_groups()
        if not self.shuffle:
            yield from self._examples(groups)
            return
        rank, _ = self.rank_and_world()
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, self.epoch, rank, info.id if info else 0])
        buffer: list[Any] = []
        for example in self._examples(groups):
            if len(buffer) < self.buffer_size:
                buffer.append(example)
                continue
            i = int(rng.integers(len(buffer)))
            buffer[i], example = example, buffer[i]
            yield example
        order = rng.permutation(len(buffer))
        for i in order:
            yield buffer[i]
