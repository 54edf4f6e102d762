"""Other projects read the shards directly: pyarrow, pandas, polars, DuckDB and HuggingFace datasets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import emoprep
from emoprep.format.schema import HUGGINGFACE_KEY, huggingface_features, utterance_schema


@pytest.fixture(scope="module")
def shards(demo_shards: Path) -> Path:
    # every modality: float16 log-mel, face-crop structs, nested fixed-size lists must all read back
    return demo_shards


def _expected(shards: Path) -> dict:
    manifest = json.loads((shards / "manifest.json").read_text())
    rows = {}
    for s in manifest["shards"]:
        rows[s["split"]] = rows.get(s["split"], 0) + s["rows"]
    return rows


def test_emoprep_reader(shards: Path) -> None:
    rows = _expected(shards)
    assert emoprep.read_shards(shards).num_rows == sum(rows.values())
    assert emoprep.read_shards(shards, split="train").num_rows == rows["train"]
    assert emoprep.read_manifest(shards).dataset == "demo"


def test_streaming_reader_gives_the_same_rows(shards: Path) -> None:
    """Every column type of a real run (float16 chunks, face-crop structs, nested fixed-size lists)."""
    for split in (None, "train"):
        batches = list(emoprep.iter_shards(shards, split=split, batch_rows=3))
        assert max(b.num_rows for b in batches) == 3
        assert pa.Table.from_batches(batches).equals(emoprep.read_shards(shards, split=split))


def test_pandas(shards: Path) -> None:
    import pandas as pd

    df = pd.concat(pd.read_parquet(p) for p in sorted(shards.glob("*-of-*.parquet")))
    assert len(df) == sum(_expected(shards).values())
    assert df["utterance_id"].is_unique
    row = df.iloc[0]
    assert list(row["tokens"]) and np.asarray(row["emotions"]).shape == (6,)
    assert np.stack(row["acoustic"]).shape[1] == 142 and np.stack(row["logmel"]).dtype == np.float16
    assert row["face_crops"][0]["bytes"][:4] == b"\x89PNG"


def test_polars(shards: Path) -> None:
    pl = pytest.importorskip("polars")
    df = pl.read_parquet(str(shards / "*-of-*.parquet"))
    counts = dict(df.group_by("split").len().iter_rows())
    assert counts == _expected(shards)
    assert df["logmel"].list.len().to_list() == df["logmel_frames"].list.len().to_list()  # aligned per chunk


def test_duckdb(shards: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    got = dict(duckdb.sql(f"select split, count(*) from '{shards}/*-of-*.parquet' group by split").fetchall())
    assert got == _expected(shards)
    n_tokens = duckdb.sql(f"select sum(len(tokens)) from '{shards}/*-of-*.parquet'").fetchall()[0][0]
    expected = sum(len(t) for t in emoprep.read_shards(shards, columns=["tokens"]).column("tokens").to_pylist())
    assert n_tokens == expected > 0


def test_huggingface_datasets_uses_the_dataset_card(shards: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(shards))
    assert {k: len(v) for k, v in ds.items()} == _expected(shards)
    first = ds["train"][0]
    assert first["utterance_id"] and len(first["acoustic"][0]) == 142 and len(first["logmel"][0]) == 4096


def test_every_shard_declares_its_huggingface_features(shards: Path) -> None:
    want = huggingface_features(utterance_schema())
    for f in sorted(shards.glob("*-of-*.parquet")):
        meta = pq.read_schema(f).metadata
        assert json.loads(meta[HUGGINGFACE_KEY.encode()]) == {"info": {"features": want}}, f.name
        assert b"emoprep.config_hash" in meta  # beside the run's own keys, not instead of them


def test_huggingface_decodes_face_crops_and_keeps_shapes(shards: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    ds = datasets.load_dataset(str(shards), split="train")
    features = ds.features
    assert isinstance(features["face_crops"].feature, datasets.Image)
    assert features["acoustic"].feature.length == 142 and features["logmel"].feature.length == 4096
    assert features["face_boxes"].feature.length == 4

    table = emoprep.read_shards(shards, split="train", columns=["utterance_id", "face_crops"])
    stored = dict(zip(table.column("utterance_id").to_pylist(), table.column("face_crops").to_pylist()))
    ids = ds["utterance_id"]
    uid = next(u for u in ids if any(stored[u] or []))  # a row with at least one face
    row = ds[ids.index(uid)]
    assert len(row["face_crops"]) == len(stored[uid])
    for got, crop in zip(row["face_crops"], stored[uid]):
        if crop is None:
            assert got is None  # a frame without a face stays empty
            continue
        assert isinstance(got, Image.Image)
        want = Image.open(io.BytesIO(crop["bytes"]))
        assert (got.size, got.mode) == (want.size, want.mode)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

    arrays = ds.with_format("numpy")[ids.index(uid)]
    n_windows = len(row["acoustic"])
    assert n_windows > 0 and arrays["acoustic"].shape == (n_windows, 142)
    assert arrays["logmel"].shape == (len(row["logmel"]), 4096)
