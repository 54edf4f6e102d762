"""Deterministic shard plan: the same utterances and shard size always give the same files.

Determinism is what makes resume safe: shard ``train-00003-of-00010`` always holds the same
utterances, so a shard found complete on disk (right config hash, right utterance ids) is the shard
this run would write.  Utterances are grouped by split (one split per file, so HuggingFace
``datasets`` maps files to splits by name) and sorted by recording and time, so a shard holds few
recordings and each is opened once.
"""

from __future__ import annotations

import hashlib
import math

from ..records import SPLITS, ShardSpec, Utterance


def _sort_key(u: Utterance) -> tuple:
    return (u.video_id, u.start_s, u.end_s, u.utterance_id)


def plan_shards(utterances: list[Utterance], shard_size: int) -> list[ShardSpec]:
    """Split utterances into shards of at most ``shard_size`` rows, balanced within each split."""
    specs: list[ShardSpec] = []
    for split in SPLITS:
        members = sorted((u for u in utterances if u.split == split), key=_sort_key)
        if not members:
            continue
        count = math.ceil(len(members) / shard_size)
        base, extra = divmod(len(members), count)
        pos = 0
        for i in range(count):
            size = base + (1 if i < extra else 0)
            specs.append(ShardSpec(len(specs), split, i, count, tuple(members[pos : pos + size])))
            pos += size
    return specs


def ids_digest(ids: tuple[str, ...] | list[str]) -> str:
    """sha256 of an ordered id list: how a shard on disk proves which utterances it holds."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


PART_ROWS = 8
"""Utterances per extraction task at most.  Shards are the unit of *output* (few, large files);
parts are the unit of *work*: a 64-row shard is 8 tasks, so N workers stay busy to the end instead of
waiting on the last, largest shard.  Small enough to balance, large enough that a task's overhead
(scheduling, moving its rows to the writer, reopening a recording) stays far below its work."""
MIN_PARTS = 32
"""A small corpus gets smaller parts, so that it still makes this many tasks to share out."""


def part_rows(n_utterances: int) -> int:
    """Utterances per part for a run of ``n_utterances``: :data:`PART_ROWS`, or fewer for a small
    corpus (at least :data:`MIN_PARTS` parts when there are that many utterances)."""
    return max(1, min(PART_ROWS, math.ceil(n_utterances / MIN_PARTS)))


def part_ranges(n_rows: int, rows_per_part: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n_rows)`` in order, in parts of at most
    ``rows_per_part`` that differ in size by at most one."""
    if n_rows <= 0:
        return []
    count = math.ceil(n_rows / rows_per_part)
    base, extra = divmod(n_rows, count)
    out, pos = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        out.append((pos, pos + size))
        pos += size
    return out
