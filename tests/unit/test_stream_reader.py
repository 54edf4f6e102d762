"""``emoprep.iter_shards``: the rows of ``read_shards``, in batches, without reading the split at once."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import emoprep
from emoprep.format import reader
from emoprep.extraction.engine.writer import ROW_GROUP_ROWS
from emoprep.testing.shards import build_shard_folder

COLUMNS = ["utterance_id", "acoustic", "split"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 3 train shards of 20 rows (row groups of 16 + 4) and a short last one: batches must cross both
    return build_shard_folder(tmp_path_factory.mktemp("stream") / "s", {"train": 50, "valid": 7, "test": 3},
                              shard_size=20)


@pytest.mark.parametrize("batch_rows", [1, 5, ROW_GROUP_ROWS, ROW_GROUP_ROWS + 1, 1000])
@pytest.mark.parametrize("split", ["train", "valid", None])
def test_same_rows_and_order_as_read_shards(folder: Path, split: str | None, batch_rows: int) -> None:
    batches = list(emoprep.iter_shards(folder, split=split, columns=COLUMNS, batch_rows=batch_rows))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    expected = emoprep.read_shards(folder, split=split, columns=COLUMNS)
    assert pa.Table.from_batches(batches).equals(expected)
    sizes = [b.num_rows for b in batches]
    # every batch full except the last, which holds the rest
    assert sizes[:-1] == [batch_rows] * (len(sizes) - 1) and 0 < sizes[-1] <= batch_rows
    assert sum(sizes) == expected.num_rows


def test_columns_are_the_chosen_ones_and_all_by_default(folder: Path) -> None:
    first = next(emoprep.iter_shards(folder, split="test", columns=["acoustic", "utterance_id"]))
    assert first.schema.names == ["acoustic", "utterance_id"]
    everything = next(emoprep.iter_shards(folder, split="test"))
    assert everything.schema.names == emoprep.read_shards(folder, split="test").schema.names
    assert everything.num_rows == 3


def test_reads_row_group_by_row_group(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first batch needs only the row groups that hold its rows, not the split."""
    read = []
    original = reader.read_row_group
    monkeypatch.setattr(reader, "read_row_group", lambda g, c=None: read.append(g) or original(g, c))
    batches = emoprep.iter_shards(folder, split="train", columns=["utterance_id"],
                                  batch_rows=ROW_GROUP_ROWS + 1)
    assert read == []  # arguments are checked eagerly, data is read lazily
    next(batches)
    assert len(read) == 2 < len(reader.row_groups(folder, "train"))


def test_clear_errors_before_any_batch(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown split 'validation'.*\['test', 'train', 'valid'\]"):
        emoprep.iter_shards(folder, split="validation")
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['acoustics'\]"):
        emoprep.iter_shards(folder, columns=["utterance_id", "acoustics"])
    with pytest.raises(ValueError, match="batch_rows"):
        emoprep.iter_shards(folder, batch_rows=0)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shard = (folder / "train-00000-of-00003.parquet").read_bytes()
    (unfinished / "train-00000-of-00001.parquet").write_bytes(shard)
    with pytest.raises(FileNotFoundError, match="has not finished"):
        emoprep.iter_shards(unfinished, split="train")


def test_a_split_the_folder_lacks_yields_nothing(folder: Path) -> None:
    """As ``read_shards`` returns an empty table for it: 'none' is a valid split this run did not write."""
    assert list(emoprep.iter_shards(folder, split="none")) == []
    assert emoprep.read_shards(folder, split="none").num_rows == 0
