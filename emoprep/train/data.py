"""A streaming torch dataset over emoprep shards, usable by any project that reads them.

Why streaming: a MOSEI split with face crops and log-mel chunks is tens of GB, so the dataset never
holds a split, only the row group being decoded plus a bounded shuffle buffer.  Row groups (16 rows
each, see :mod:`emoprep.shards.writer`) are the unit of work: each epoch they are shuffled with the
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

from ..shards.reader import RowGroup, read_row_group, row_groups


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


class ShardStream(IterableDataset):
    """Rows of one split of a shard folder, streamed row group by row group.

    ``rank``/``world_size`` default to the torch.distributed process group when one is initialised
    (torchrun), else a single process.  Call :meth:`set_epoch` before each epoch so that the
    shuffle differs between epochs and agrees between ranks.
    """

    def __init__(
        self,
        folder: str | Path,
        split: str,
        columns: list[str] | None = None,
        *,
        transform: Callable[[pa.Table], list[Any]] = table_rows,
        shuffle: bool = False,
        seed: int = 0,
        buffer_size: int = 1024,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.split = split
        self.columns = list(columns) if columns is not None else None
        self.transform = transform
        self.shuffle = shuffle
        self.seed = seed
        self.buffer_size = max(1, buffer_size)
        self.groups = row_groups(self.folder, split)
        self.epoch = 0
        self._rank = rank
        self._world_size = world_size

    @property
    def rows(self) -> int:
        """Rows of the split, over all ranks."""
        return sum(g.rows for g in self.groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rank_and_world(self) -> tuple[int, int]:
        if self._rank is not None and self._world_size is not None:
            return self._rank, self._world_size
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

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
