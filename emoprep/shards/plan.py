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

from ..types import SPLITS, ShardSpec, Utterance


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
