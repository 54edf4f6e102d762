import random

import pytest

from emoprep.extraction.records import Utterance
from emoprep.extraction.engine.plan import PART_ROWS, ids_digest, part_ranges, part_rows, plan_shards


def _utts(n: int, seed: int = 0) -> list[Utterance]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        split = rng.choice(["train", "train", "valid", "test"])
        out.append(Utterance(f"u{i:03d}", "demo", f"v{i % 7}", float(i), i + 1.0, split=split))
    return out


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    utts = _utts(50)
    shuffled = utts[:]
    random.Random(9).shuffle(shuffled)
    a, b = plan_shards(utts, 8), plan_shards(shuffled, 8)
    assert [(s.filename, s.utterance_ids) for s in a] == [(s.filename, s.utterance_ids) for s in b]


def test_every_utterance_once_one_split_per_shard_balanced_sizes() -> None:
    utts = _utts(50)
    specs = plan_shards(utts, 8)
    ids = [i for s in specs for i in s.utterance_ids]
    assert sorted(ids) == sorted(u.utterance_id for u in utts)
    by_id = {u.utterance_id: u for u in utts}
    for s in specs:
        assert {by_id[i].split for i in s.utterance_ids} == {s.split}
        assert 1 <= len(s.utterances) <= 8
        assert s.filename == f"{s.split}-{s.split_index:05d}-of-{s.split_count:05d}.parquet"
    for split in {s.split for s in specs}:
        sizes = [len(s.utterances) for s in specs if s.split == split]
        assert max(sizes) - min(sizes) <= 1
    assert [s.index for s in specs] == list(range(len(specs)))


def test_recordings_are_kept_together_and_time_ordered() -> None:
    specs = plan_shards(_utts(60), 100)
    for s in specs:
        keys = [(u.video_id, u.start_s) for u in s.utterances]
        assert keys == sorted(keys)


def test_ids_digest_depends_on_order() -> None:
    assert ids_digest(["a", "b"]) != ids_digest(["b", "a"])


@pytest.mark.parametrize("n, per", [(1, 8), (7, 8), (8, 8), (9, 8), (64, 8), (65, 8), (20, 3)])
def test_part_ranges_cover_the_shard_in_order_and_in_balanced_parts(n: int, per: int) -> None:
    ranges = part_ranges(n, per)
    assert [a for a, _ in ranges] == [0] + [b for _, b in ranges[:-1]]  # contiguous, in order
    assert ranges[-1][1] == n
    sizes = [b - a for a, b in ranges]
    assert max(sizes) <= per and max(sizes) - min(sizes) <= 1
    assert len(ranges) == -(-n // per)
    assert part_ranges(0, per) == []


def test_small_corpora_get_smaller_parts_so_workers_share_them() -> None:
    assert part_rows(23_000) == PART_ROWS  # a MOSEI run: 8-utterance parts
    assert part_rows(80) == 3 and len(part_ranges(80, part_rows(80))) >= 26  # 2 shards of 40 -> 28 tasks
    assert part_rows(5) == 1
