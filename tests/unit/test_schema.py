import json
from importlib import resources

import numpy as np
import pyarrow as pa
import pytest

from emoprep.errors import SchemaError
from emoprep.format.schema import parse_type, schema_document, utterance_schema, validate_table
from emoprep.extraction.engine.columns import rows_to_table

LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")


def _row(i: int, **over) -> dict:
    row = {
        "utterance_id": f"v_{i}",
        "dataset": "demo",
        "video_id": "v",
        "split": "train",
        "start_s": float(i),
        "end_s": i + 1.5,
        "text": "hi there",
        "tokens": ["hi", "there"],
        "glove": np.ones((2, 300), dtype=np.float32),
        "glove_oov": [False, True],
        "emotions": [1, 0, 0, 0, 0, 0],
    }
    row.update(over)
    return row


def test_type_notation_round_trips() -> None:
    assert parse_type("list<fixed_size_list<float32>[142]>") == pa.list_(pa.list_(pa.float32(), 142))
    assert parse_type("struct<bytes: binary, path: string>") == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    with pytest.raises(SchemaError):
        parse_type("tensor<float32>")


def test_schema_file_is_complete_documentation() -> None:
    doc = schema_document()
    assert doc["version"] == 1
    for col in doc["columns"]:
        assert col["description"], col["name"]
        if col["nullable"]:
            assert col.get("null_means"), f"{col['name']} must say what a null means"
    names = {c["name"]: c for c in doc["columns"]}
    assert len(names["acoustic"]["feature_names"]) == 142
    assert len(names["aus"]["feature_names"]) == 35
    assert names["aus"]["feature_names"][:2] == ["AU01_r", "AU02_r"] and names["aus"]["feature_names"][-1] == "AU45_c"
    schema = utterance_schema()
    assert schema.field("acoustic").type == pa.list_(pa.list_(pa.float32(), 142))
    assert schema.field("glove").type == pa.list_(pa.list_(pa.float32(), 300))
    assert not schema.field("utterance_id").nullable


def test_schema_json_is_packaged() -> None:
    text = resources.files("emoprep.schemas").joinpath("utterance.v1.json").read_text()
    assert json.loads(text)["name"] == "emoprep.utterance"


def test_valid_table_passes_and_keeps_values() -> None:
    table = rows_to_table([_row(0), _row(1, text=None, tokens=None, glove=None, glove_oov=None)], utterance_schema())
    validate_table(table, LABELS)
    assert np.asarray(table.column("glove")[0].as_py()).shape == (2, 300)
    assert table.column("glove")[1].as_py() is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"split": "dev"}, "split"),
        ({"start_s": 5.0, "end_s": 5.0}, "start_s"),
        ({"start_s": -1.0}, "start_s"),
        ({"emotions": [1, 0]}, "emotions"),
        ({"glove": np.full((2, 300), np.nan, dtype=np.float32)}, "NaN"),
        ({"utterance_id": "v_0"}, "duplicate"),
    ],
)
def test_invalid_tables_are_rejected(override: dict, message: str) -> None:
    table = rows_to_table([_row(0), _row(1, **override)], utterance_schema())
    with pytest.raises(SchemaError, match=message):
        validate_table(table, LABELS)


def test_missing_required_value_and_wrong_type_are_rejected() -> None:
    table = rows_to_table([_row(0)], utterance_schema())
    nulled = table.set_column(2, "video_id", pa.array([None], pa.string()))
    with pytest.raises(SchemaError, match="not nullable"):
        validate_table(nulled, LABELS)
    wrong = table.set_column(5, "start_s", pa.array([0.0], pa.float32()))
    with pytest.raises(SchemaError, match="type"):
        validate_table(wrong, LABELS)
    with pytest.raises(SchemaError, match="missing"):
        validate_table(table.drop_columns(["text"]), LABELS)


def test_schema_page_is_generated_from_the_json() -> None:
    """schemas/README.md must describe the schema the code writes (regenerate: emoprep schema --markdown)."""
    from pathlib import Path

    from emoprep.format.schema_docs import render_markdown

    page = Path(__file__).resolve().parents[2] / "schemas" / "README.md"
    assert page.read_text() == render_markdown()
    for name in utterance_schema().names:
        assert f"`{name}`" in page.read_text()
