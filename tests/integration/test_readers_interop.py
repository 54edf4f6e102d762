"""Other projects read the shards directly: pyarrow, pandas, polars, DuckDB and HuggingFace datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import emoprep
from emoprep.config import build_config
from emoprep.pipeline import run_extract


@pytest.fixture(scope="module")
def shards(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("interop") / "shards"
    # every modality: float16 log-mel, face-crop structs, nested fixed-size lists must all read back
    run_extract(build_config("demo", {"shard_size": 4}), small_demo, out, synchronous=True)
    return out


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
    assert emoprep.read_manifest(shards)["dataset"] == "demo"


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
