"""The ``huggingface`` schema metadata: written from the published schema, read by ``datasets``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emoprep.errors import SchemaError
from emoprep.format.schema import HUGGINGFACE_KEY, huggingface_features, schema_document, utterance_schema
from emoprep.testing.shards import build_shard_folder


def _types(node: object) -> set[str]:
    """Every ``_type`` in a serialised feature tree."""
    if isinstance(node, list):
        return set().union(*(_types(n) for n in node)) if node else set()
    if isinstance(node, dict):
        own = {node["_type"]} if isinstance(node.get("_type"), str) else set()
        return own.union(*(_types(v) for k, v in node.items() if k != "_type"))
    return set()


def test_features_follow_the_arrow_types() -> None:
    f = huggingface_features(utterance_schema())
    assert list(f) == utterance_schema().names
    assert f["face_crops"] == {"_type": "Sequence", "feature": {"_type": "Image"}, "length": -1}
    def value(dtype: str) -> dict:
        return {"_type": "Value", "dtype": dtype}

    assert f["acoustic"] == {"_type": "Sequence", "length": -1,
                             "feature": {"_type": "Sequence", "feature": value("float32"), "length": 142}}
    assert f["logmel"]["feature"] == {"_type": "Sequence", "feature": value("float16"), "length": 4096}
    assert f["start_s"] == value("float64")
    assert f["acoustic_valid"]["feature"] == value("bool")
    # Sequence, never List: datasets < 4 has no List type and fails on the whole key
    assert _types(f) == {"Sequence", "Value", "Image"}


def test_plain_structs_and_unsupported_types() -> None:
    pair = pa.struct([pa.field("a", pa.int32()), pa.field("b", pa.string())])
    schema = pa.schema([pa.field("pairs", pa.list_(pair))])
    assert huggingface_features(schema) == {"pairs": [{"a": {"_type": "Value", "dtype": "int32"},
                                                       "b": {"_type": "Value", "dtype": "string"}}]}
    with pytest.raises(SchemaError, match="no HuggingFace feature"):
        huggingface_features(pa.schema([pa.field("t", pa.timestamp("s"))]))


def test_the_schema_carries_the_key_and_documents_it() -> None:
    declared = json.loads(utterance_schema().metadata[HUGGINGFACE_KEY.encode()])
    assert declared == {"info": {"features": huggingface_features(utterance_schema())}}
    assert HUGGINGFACE_KEY in schema_document()["file_metadata"]


def test_datasets_reads_every_column_back_to_the_same_arrow_type() -> None:
    datasets = pytest.importorskip("datasets")
    schema = utterance_schema()
    features = datasets.Features.from_arrow_schema(schema)
    assert isinstance(features["face_crops"].feature, datasets.Image)  # from the metadata, not inferred
    for field in schema:
        assert features.arrow_schema.field(field.name).type.equals(field.type), field.name


def test_test_shard_folders_get_it_through_the_writer(tmp_path: Path) -> None:
    folder = build_shard_folder(tmp_path / "s", {"train": 3, "valid": 1, "test": 1}, crops=True)
    for f in sorted(folder.glob("*-of-*.parquet")):
        meta = pq.read_schema(f).metadata
        assert HUGGINGFACE_KEY.encode() in meta and b"emoprep.label_names" in meta, f.name


def test_datasets_is_not_imported_by_the_product() -> None:
    """``datasets`` is a test extra: writing shards must not need it."""
    code = ("import sys, emoprep.format.schema, emoprep.extraction.engine.writer, emoprep.testing.shards, emoprep.extraction; "
            "sys.exit('datasets' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
