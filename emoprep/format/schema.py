"""The published output contract: ``schemas/utterance.v1.json`` turned into a pyarrow schema.

The JSON file is the single source of truth (other projects read it; the docs render it); this module
only translates it.  :func:`validate_table` runs on every table before it is written, so a shard on
disk always satisfies the contract it claims in its metadata.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SchemaError
from .names import SPLITS

SCHEMA_VERSION = 1

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "binary": pa.binary(),
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
}


def _split_top(text: str) -> list[str]:
    """Split ``a: T, b: list<U>`` on commas that are not nested inside ``<>``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_type(text: str) -> pa.DataType:
    """Parse the schema file's type notation, e.g. ``list<fixed_size_list<float32>[142]>``."""
    text = text.strip()
    if text in _PRIMITIVES:
        return _PRIMITIVES[text]
    m = re.fullmatch(r"fixed_size_list<(.+)>\[(\d+)\]", text)
    if m:
        return pa.list_(parse_type(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"list<(.+)>", text)
    if m:
        return pa.list_(parse_type(m.group(1)))
    m = re.fullmatch(r"struct<(.+)>", text)
    if m:
        fields = []
        for part in _split_top(m.group(1)):
            name, _, sub = part.partition(":")
            fields.append(pa.field(name.strip(), parse_type(sub)))
        return pa.struct(fields)
    raise SchemaError(f"cannot parse schema type {text!r}")


@lru_cache(maxsize=None)
def schema_document(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The parsed ``schemas/utterance.v<version>.json``."""
    text = resources.files("emoprep.schemas").joinpath(f"utterance.v{version}.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=None)
def feature_names(column: str, version: int = SCHEMA_VERSION) -> tuple[str, ...]:
    """The names of a column's features in stored order, as the published schema lists them (e.g.
    the 142 DisVoice names of ``acoustic``); empty for a column without named features."""
    for col in schema_document(version)["columns"]:
        if col["name"] == column:
            return tuple(col.get("feature_names") or ())
    raise KeyError(f"no column {column!r} in schema v{version}")


HUGGINGFACE_KEY = "huggingface"
"""Parquet key-value metadata key that HuggingFace ``datasets`` reads features from
(``Features.from_arrow_schema``); without it, face crops load as plain ``{bytes, path}`` dicts."""

IMAGE_STRUCT = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
"""HuggingFace's storage layout of an ``Image`` feature; the schema stores face crops in it."""

_HF_DTYPES = {str(t): name for name, t in _PRIMITIVES.items()}
"""Arrow type -> ``datasets.Value`` dtype (``halffloat`` -> ``float16``, ``float`` -> ``float32``, ...)."""


def _hf_feature(typ: pa.DataType) -> Any:
    """The serialised ``datasets`` feature of one Arrow type.

    Lists are written as ``{"_type": "Sequence", "feature": ..., "length": N}`` with ``length`` always
    present (-1 for variable length): datasets before 4.0 know no ``List`` type and the oldest
    versions read ``obj["length"]`` unconditionally, while datasets 4+ still read ``Sequence`` and
    turn it into ``List``.  A list of plain structs is a JSON list (``[{...}]``), because a
    ``Sequence`` of a dict means a dict of lists, which is another Arrow type.
    """
    if typ.equals(IMAGE_STRUCT):
        return {"_type": "Image"}
    if pa.types.is_struct(typ):
        return {typ.field(i).name: _hf_feature(typ.field(i).type) for i in range(typ.num_fields)}
    if pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ):
        inner = typ.value_type
        length = typ.list_size if pa.types.is_fixed_size_list(typ) else -1
        if pa.types.is_struct(inner) and not inner.equals(IMAGE_STRUCT):
            if length != -1:
                raise SchemaError(f"no HuggingFace feature for a fixed-size list of structs ({typ})")
            return [_hf_feature(inner)]
        return {"_type": "Sequence", "feature": _hf_feature(inner), "length": length}
    if str(typ) in _HF_DTYPES:
        return {"_type": "Value", "dtype": _HF_DTYPES[str(typ)]}
    raise SchemaError(f"no HuggingFace feature for Arrow type {typ}")


def huggingface_features(schema: pa.Schema) -> dict[str, Any]:
    """``datasets.Features`` of ``schema`` in their JSON form, written without importing ``datasets``
    (a test extra, not a dependency): ``face_crops`` becomes a list of ``Image``, fixed-size lists
    keep their ``length`` so arrays load with their shapes."""
    return {field.name: _hf_feature(field.type) for field in schema}


@lru_cache(maxsize=None)
def utterance_schema(version: int = SCHEMA_VERSION) -> pa.Schema:
    """The Arrow schema of a shard, with unit/description in each field's metadata.

    The schema-level metadata carries the ``huggingface`` key (:func:`huggingface_features`): every
    table built on this schema keeps it, and :func:`emoprep.extraction.engine.writer.write_table` adds its
    ``emoprep.*`` keys beside it, so each shard written by a run or by :mod:`emoprep.testing` carries
    it without a second code path.
    """
    fields = []
    for col in schema_document(version)["columns"]:
        meta = {"description": col["description"]}
        for key in ("unit", "null_means", "window_s", "hop_s"):
            if key in col:
                meta[key] = str(col[key])
        fields.append(pa.field(col["name"], parse_type(col["type"]), nullable=col["nullable"], metadata=meta))
    schema = pa.schema(fields)
    features = json.dumps({"info": {"features": huggingface_features(schema)}}, separators=(",", ":"))
    return schema.with_metadata({HUGGINGFACE_KEY: features})


def _float_values(arr: pa.ChunkedArray) -> pa.Array | None:
    """All leaf float values of a (nested list) column, or None for non-float columns."""
    typ = arr.type
    while pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ):
        typ = typ.value_type
    if not pa.types.is_floating(typ):
        return None
    leaves = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    while pa.types.is_list(leaves.type) or pa.types.is_fixed_size_list(leaves.type):
        leaves = leaves.flatten()
    return leaves


def _null_fixed_size_elements(arr: pa.Array) -> bool:
    """Whether a (nested) array holds a null ``fixed_size_list`` element, which pyarrow < 26 cannot
    read back from Parquet (see :mod:`emoprep.extraction.engine.columns`)."""
    typ = arr.type
    if pa.types.is_fixed_size_list(typ):
        return arr.null_count > 0
    if pa.types.is_list(typ) and pa.types.is_fixed_size_list(typ.value_type):
        return arr.flatten().null_count > 0
    return False


def validate_table(table: pa.Table, label_names: tuple[str, ...] | None = None) -> None:
    """Raise :class:`SchemaError` unless ``table`` satisfies the published schema.

    Checks: exact column names, order and types; no nulls in non-nullable columns; no null
    fixed-size-list elements (unreadable for pyarrow < 26: store all-null values instead); unique
    utterance ids; split values; ``0 <= start_s < end_s``; label lists as long as ``label_names``;
    no NaN or infinity in any float column (extractors must turn those into nulls or masks).
    """
    expected = utterance_schema()
    if table.schema.names != expected.names:
        missing = set(expected.names) - set(table.schema.names)
        extra = set(table.schema.names) - set(expected.names)
        raise SchemaError(f"columns differ from schema v{SCHEMA_VERSION}: missing {sorted(missing)}, extra {sorted(extra)}")
    for field in expected:
        got = table.schema.field(field.name)
        if not got.type.equals(field.type):
            raise SchemaError(f"column {field.name}: type {got.type} != schema {field.type}")
        if not field.nullable and table.column(field.name).null_count:
            raise SchemaError(f"column {field.name} is not nullable but has {table.column(field.name).null_count} null(s)")
        if any(_null_fixed_size_elements(chunk) for chunk in table.column(field.name).chunks):
            raise SchemaError(f"column {field.name} has null fixed-size elements; store all-null values instead")
    if table.num_rows == 0:
        return
    ids = table.column("utterance_id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise SchemaError("duplicate utterance_id values in one table")
    bad_split = set(pc.unique(table.column("split")).to_pylist()) - set(SPLITS)
    if bad_split:
        raise SchemaError(f"invalid split value(s) {sorted(bad_split)}; allowed: {SPLITS}")
    start = table.column("start_s").to_numpy()
    end = table.column("end_s").to_numpy()
    if np.any(start < 0) or np.any(end <= start):
        raise SchemaError("every row needs 0 <= start_s < end_s")
    if label_names is not None:
        for name in ("emotions", "emotion_intensity"):
            lengths = pc.list_value_length(table.column(name)).drop_null().to_numpy()
            if lengths.size and np.any(lengths != len(label_names)):
                raise SchemaError(f"{name} lists must have {len(label_names)} values (label_names {list(label_names)})")
    for name in table.schema.names:
        leaves = _float_values(table.column(name))
        if leaves is None or len(leaves) == 0:
            continue
        values = leaves.drop_null().to_numpy(zero_copy_only=False)
        if values.size and not np.all(np.isfinite(values)):
            raise SchemaError(f"column {name} holds NaN or infinite values")
