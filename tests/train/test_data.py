"""The streaming shard dataset: every row exactly once per epoch, over loader workers and ranks;
seeded shuffles; featuriser choices, masks and padding."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from emoprep import read_manifest, read_shards
from emoprep.errors import SetupError
from emoprep.testing.shards import build_shard_folder
from emoprep.train.batch import ModalityInput
from emoprep.train.data import ShardStream, deal
from emoprep.train.inputs import Featurizer, choose_branches, collate, normalise_landmarks


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # shard_size 20 with 16-row row groups: row groups of 16 and 4 rows, so deals are uneven
    return build_shard_folder(tmp_path_factory.mktemp("shards") / "s", {"train": 100, "valid": 20, "test": 20}, shard_size=20)


def _ids(stream: ShardStream, workers: int = 0) -> list[str]:
    loader = DataLoader(stream, batch_size=None, num_workers=workers)
    return [row["utterance_id"] for row in loader]


def test_every_row_once_per_epoch_with_two_loader_workers(folder: Path) -> None:
    expected = read_shards(folder, split="train", columns=["utterance_id"]).column("utterance_id").to_pylist()
    stream = ShardStream(folder, "train", ["utterance_id"], shuffle=True, seed=3, buffer_size=7)
    for epoch in (0, 1):
        stream.set_epoch(epoch)
        ids = _ids(stream, workers=2)
        assert Counter(ids) == Counter(expected)


def test_every_row_once_per_epoch_over_two_ranks(folder: Path) -> None:
    expected = read_shards(folder, split="train", columns=["utterance_id"]).column("utterance_id").to_pylist()
    for epoch in (0, 1):
        parts = []
        for rank in (0, 1):
            stream = ShardStream(folder, "train", ["utterance_id"], shuffle=True, seed=3, rank=rank, world_size=2)
            stream.set_epoch(epoch)
            parts.append(_ids(stream, workers=2))  # 2 ranks x 2 loader workers
        assert Counter(parts[0] + parts[1]) == Counter(expected)
        assert set(parts[0]).isdisjoint(parts[1])
        assert abs(len(parts[0]) - len(parts[1])) <= 16  # balanced to within one row group


def _as_rank(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> None:
    """This process looks like rank ``rank`` of an initialised process group of ``world``."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: rank)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: world)


def test_spawned_loader_workers_read_only_their_ranks_share(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started by spawn (or forkserver) have no process group: the rank must come from the main process."""
    share = Counter(_ids(ShardStream(folder, "train", ["utterance_id"], shuffle=True, seed=3, rank=1, world_size=2)))
    with monkeypatch.context() as m:
        _as_rank(m, 1, 2)
        stream = ShardStream(folder, "train", ["utterance_id"], shuffle=True, seed=3)
    loader = DataLoader(stream, batch_size=None, num_workers=2, multiprocessing_context="spawn")
    ids = [row["utterance_id"] for row in loader]
    assert Counter(ids) == share and 0 < len(ids) < stream.rows
    assert stream.rank_and_world() == (1, 2)
    assert ShardStream(folder, "train").rank_and_world() == (0, 1)  # standalone: the whole split


def test_the_featurizer_is_fitted_on_the_whole_training_split_on_every_rank(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = read_manifest(folder)
    branches = choose_branches(manifest, ("text", "acoustic"), {})
    alone, targets = Featurizer.fit(folder, branches, manifest.label_names, max_len=50)
    _as_rank(monkeypatch, 1, 2)
    ranked, ranked_targets = Featurizer.fit(folder, branches, manifest.label_names, max_len=50)
    np.testing.assert_array_equal(ranked_targets, targets)  # every rank fits the same featuriser
    assert ranked.vocab == alone.vocab and ranked.branches == alone.branches


def test_shuffle_is_seeded_and_differs_between_epochs(folder: Path) -> None:
    def order(seed: int, epoch: int) -> list[str]:
        s = ShardStream(folder, "train", ["utterance_id"], shuffle=True, seed=seed, buffer_size=32)
        s.set_epoch(epoch)
        return _ids(s)

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)
    plain = _ids(ShardStream(folder, "train", ["utterance_id"]))
    assert plain == read_shards(folder, split="train", columns=["utterance_id"]).column("utterance_id").to_pylist()


def test_deal_balances_rows() -> None:
    from emoprep.format.reader import RowGroup

    groups = [RowGroup(Path("x"), i, rows, "train") for i, rows in enumerate([16, 16, 4, 16, 4, 16])]
    hands = deal(groups, 2)
    # in order, each to the lighter hand: A16 B16 A20 B32 A24 A40 (ties go to the first hand)
    assert [sum(g.rows for g in h) for h in hands] == [40, 32]
    assert [g.index for g in hands[0]] == [0, 2, 4, 5]
    assert sorted(g.index for h in hands for g in h) == list(range(6))


def test_default_rows_are_numpy_matrices_with_nulls_as_none(folder: Path) -> None:
    rows = list(ShardStream(folder, "train", ["utterance_id", "acoustic", "aus", "face_mesh"]))
    assert rows[0]["aus"] is None  # no AU backend in this folder
    assert rows[0]["acoustic"].shape[1] == 142
    assert rows[0]["face_mesh"].shape[1] == 1404


def test_branch_choice_follows_what_the_shards_hold(folder: Path, tmp_path: Path) -> None:
    manifest = read_manifest(folder)
    chosen = choose_branches(manifest, ("text", "acoustic", "visual"), {})
    assert {m: b.column for m, b in chosen.items()} == {"text": "tokens", "acoustic": "acoustic", "visual": "face_mesh"}
    rich = build_shard_folder(tmp_path / "rich", {"train": 8, "valid": 4}, glove=True, aus=True)
    chosen = choose_branches(read_manifest(rich), ("text", "visual"), {})
    assert {m: b.column for m, b in chosen.items()} == {"text": "glove", "visual": "aus"}
    assert choose_branches(read_manifest(rich), ("visual",), {"visual": "face_mesh"})["visual"].column == "face_mesh"
    bare = build_shard_folder(tmp_path / "bare", {"train": 8, "valid": 4}, face_mesh=False)
    with pytest.raises(SetupError, match="no visual features.*face_mesh.*modalities=\\[text,acoustic\\]"):
        choose_branches(read_manifest(bare), ("text", "acoustic", "visual"), {})
    with pytest.raises(SetupError, match="glove"):
        choose_branches(read_manifest(folder), ("text",), {"text": "glove"})


def test_landmarks_lose_position_and_scale_but_keep_shape() -> None:
    rng = np.random.default_rng(0)
    face = rng.normal(size=(468, 3))
    moved = face * 3.0 + np.array([100.0, -50.0, 0.0])
    a, b = normalise_landmarks(np.stack([face.ravel(), moved.ravel()]).astype(np.float32))
    np.testing.assert_allclose(a, b, atol=1e-4)
    other = face.copy()
    other[:10, 1] += 2.0
    assert np.abs(normalise_landmarks(other.reshape(1, -1).astype(np.float32))[0] - a).max() > 0.05
    assert np.sqrt((a.reshape(468, 2) ** 2).sum(1).mean()) == pytest.approx(1.0, rel=1e-5)


def test_featurizer_masks_missing_frames_and_invalid_windows(folder: Path) -> None:
    manifest = read_manifest(folder)
    branches = choose_branches(manifest, ("text", "acoustic", "visual"), {})
    featurizer, targets = Featurizer.fit(folder, branches, manifest.label_names, max_len=4)
    assert targets.shape == (99, 3)  # one unlabelled row dropped
    raw = read_shards(folder, split="train", columns=["utterance_id", "acoustic_valid", "face_missing", "emotions"]).to_pylist()
    examples = {e[0]: e for e in ShardStream(folder, "train", featurizer.columns(), transform=featurizer)}
    assert len(examples) == 99
    for row in raw:
        if row["emotions"] is None:
            assert row["utterance_id"] not in examples
            continue
        _, _, y, inputs = examples[row["utterance_id"]]
        assert list(y) == row["emotions"]
        values, mask = inputs["acoustic"]
        assert list(mask) == row["acoustic_valid"][:4]  # truncated to max_len, silent windows masked
        assert not values[~mask].any()
        _, vmask = inputs["visual"]
        assert list(vmask) == [m is None for m in row["face_missing"]][:4]
    # standardised on the training split: valid positions have mean ~0, std ~1
    stacked = np.concatenate([e[3]["acoustic"][0][e[3]["acoustic"][1]] for e in examples.values()])
    assert abs(stacked.mean()) < 0.05 and abs(stacked.std() - 1) < 0.05


def test_featurizer_round_trips_through_json(folder: Path, tmp_path: Path) -> None:
    manifest = read_manifest(folder)
    branches = choose_branches(manifest, ("text", "acoustic"), {})
    featurizer, _ = Featurizer.fit(folder, branches, manifest.label_names, max_len=50)
    featurizer.save(tmp_path / "f.json")
    again = Featurizer.load(tmp_path / "f.json")
    assert again.vocab == featurizer.vocab and again.branches == featurizer.branches
    a = list(ShardStream(folder, "valid", featurizer.columns(), transform=featurizer))
    b = list(ShardStream(folder, "valid", again.columns(), transform=again))
    for x, y in zip(a, b):
        assert np.array_equal(x[3]["text"][0], y[3]["text"][0])
        assert np.array_equal(x[3]["acoustic"][0], y[3]["acoustic"][0])
    assert featurizer.vocab[:2] == ("<pad>", "<unk>")


def test_collate_pads_and_masks_by_hand() -> None:
    examples = [
        ("a", "train", np.array([1, 0], np.float32), {"acoustic": (np.ones((3, 2), np.float32), np.array([True, True, False])),
                                                      "text": (np.array([5, 6], np.int64), np.array([True, True]))}),
        ("b", "train", np.array([0, 1], np.float32), {"acoustic": (np.zeros((0, 2), np.float32), np.zeros(0, bool)),
                                                      "text": (np.array([7], np.int64), np.array([True]))}),
    ]
    batch = collate(examples)
    acoustic: ModalityInput = batch.inputs["acoustic"]
    assert acoustic.values.shape == (2, 3, 2)
    assert acoustic.mask.tolist() == [[True, True, False], [False, False, False]]
    assert acoustic.present.tolist() == [True, False]
    assert batch.inputs["text"].values.tolist() == [[5, 6], [7, 0]]
    assert batch.inputs["text"].lengths.tolist() == [2, 1]
    assert torch.equal(batch.targets, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert batch.ids == ["a", "b"]


def test_end_to_end_inputs_are_decoded_crops_and_standardised_logmel(tmp_path: Path) -> None:
    folder = build_shard_folder(tmp_path / "e2e", {"train": 24, "valid": 8}, crops=True, logmel=True)
    manifest = read_manifest(folder)
    branches = choose_branches(manifest, ("acoustic", "visual"), {}, family="end_to_end")
    assert {m: (b.column, b.image_shape) for m, b in branches.items()} == {
        "acoustic": ("logmel", (1, 128, 32)), "visual": ("face_crops", (3, 48, 48))}
    featurizer, _ = Featurizer.fit(folder, branches, manifest.label_names, max_len=50)
    assert len(featurizer.branches["acoustic"].mean) == 128  # one statistic per mel band
    raw = read_shards(folder, split="train", columns=["utterance_id", "face_crops", "logmel", "logmel_frames"]).to_pylist()
    examples = {e[0]: e for e in ShardStream(folder, "train", featurizer.columns(), transform=featurizer)}
    real_frames = []
    for row in raw:
        if row["utterance_id"] not in examples:
            continue
        inputs = examples[row["utterance_id"]][3]
        crops, mask = inputs["visual"]
        assert list(mask) == [c is not None for c in row["face_crops"]]
        assert crops.shape[1:] == (3, 48, 48) and not crops[~mask].any()
        first = next(i for i, c in enumerate(row["face_crops"]) if c is not None)
        expected = np.asarray(Image.open(io.BytesIO(row["face_crops"][first]["bytes"])).convert("RGB")).transpose(2, 0, 1)
        assert np.array_equal(crops[first], expected)  # RGB in [0, 255], not normalised here
        chunks, _ = inputs["acoustic"]
        assert chunks.shape[1:] == (1, 128, 32)
        for chunk, n in zip(chunks[:, 0], row["logmel_frames"]):
            real_frames.append(chunk[:, :n])
    bands = np.concatenate(real_frames, axis=1)
    assert np.abs(bands.mean(axis=1)).max() < 1e-3 and np.abs(bands.std(axis=1) - 1).max() < 1e-2


def test_column_values_keep_null_elements_in_place() -> None:
    """A null frame inside a row stays a (NaN) row in place; nothing shifts into the next row."""
    import pyarrow as pa

    from emoprep.train.data import column_values

    typ = pa.list_(pa.list_(pa.float32(), 2))
    column = pa.array([[[1, 2], None, [3, 4]], None, [[5, 6]], []], type=typ)
    for arr, expected in ((column, [[[1, 2], [np.nan] * 2, [3, 4]], None, [[5, 6]], []]), (column.slice(2), [[[5, 6]], []])):
        got = column_values(arr)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            if e is None:
                assert g is None
            else:
                np.testing.assert_array_equal(g.reshape(-1, 2), np.asarray(e, dtype=np.float32).reshape(-1, 2))


def test_glove_vectors_are_fed_as_they_are(tmp_path: Path) -> None:
    folder = build_shard_folder(tmp_path / "g", {"train": 8, "valid": 4}, glove=True)
    manifest = read_manifest(folder)
    branches = choose_branches(manifest, ("text",), {})
    featurizer, _ = Featurizer.fit(folder, branches, manifest.label_names, max_len=50)
    examples = list(ShardStream(folder, "train", featurizer.columns(), transform=featurizer))
    raw = read_shards(folder, split="train", columns=["glove", "emotions"]).to_pylist()
    labelled = [r for r in raw if r["emotions"] is not None]
    np.testing.assert_allclose(examples[0][3]["text"][0], np.asarray(labelled[0]["glove"], dtype=np.float32))


def test_training_loader_reshuffles_each_epoch_with_workers(folder: Path) -> None:
    """The trainer's loader must see set_epoch in its workers: each epoch a new order, every row once."""
    from emoprep.train.loop import make_loader

    manifest = read_manifest(folder)
    featurizer, _ = Featurizer.fit(folder, choose_branches(manifest, ("acoustic",), {}), manifest.label_names, 50)
    stream = ShardStream(folder, "train", featurizer.columns(), transform=featurizer, shuffle=True, seed=0, buffer_size=8)
    loader = make_loader(stream, 8, workers=2)
    orders = []
    for epoch in (1, 2):
        stream.set_epoch(epoch)
        orders.append([i for batch in loader for i in batch.ids])
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])
