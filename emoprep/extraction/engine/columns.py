"""Turn per-row Python/numpy values into Arrow columns of the schema's types, fast.

``pa.array`` on a list of 2-D numpy arrays goes through Python floats one by one; for a shard of GloVe
or acoustic matrices that is most of the write time.  Rows that hold whole numpy matrices take a
vectorised path (one concatenate, offsets, a validity mask); anything else (lists with null elements,
strings, structs) takes ``pa.array`` with the exact target type.

Arrow/Parquet limitation handled here, once for every extractor: pyarrow < 26 cannot *read back* a
``fixed_size_list`` element that is null (apache/arrow GH-35692, fixed in 2026).  So a missing
element of a ``list<fixed_size_list<T>[N]>`` column (e.g. the AUs of a frame without a face) is
stored as N null values instead of a null element; readers see "every value null" and all
readers, old pyarrow included, can open the file.  Extractors simply return ``None`` for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def _is_matrix_list_type(typ: pa.DataType) -> bool:
    return (
        pa.types.is_list(typ)
        and pa.types.is_fixed_size_list(typ.value_type)
        and pa.types.is_floating(typ.value_type.value_type)
    )


def _matrix_column(values: list[Any], typ: pa.ListType) -> pa.Array | None:
    """``list<fixed_size_list<float>[N]>`` from rows that are None or ``(n, N)`` arrays; None if not applicable."""
    inner = typ.value_type
    size = inner.list_size
    leaf = inner.value_type
    dtype = leaf.to_pandas_dtype()
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    mask = np.zeros(len(values), dtype=bool)
    chunks = []
    for i, v in enumerate(values):
        if v is None:
            mask[i] = True
            offsets[i + 1] = offsets[i]
            continue
        if not isinstance(v, np.ndarray):
            return None
        arr = np.asarray(v, dtype=dtype).reshape(-1, size)
        chunks.append(arr)
        offsets[i + 1] = offsets[i] + arr.shape[0]
    flat = np.concatenate(chunks).ravel() if chunks else np.empty(0, dtype=dtype)
    fsl = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=leaf), size)
    return pa.ListArray.from_arrays(pa.array(offsets), fsl, type=typ, mask=pa.array(mask))


def to_arrow(values: list[Any], typ: pa.DataType) -> pa.Array:
    """One column of the schema type ``typ`` from one value per row."""
    if _is_matrix_list_type(typ):
        fast = _matrix_column(values, typ)
        if fast is not None:
            return fast
        empty = [None] * typ.value_type.list_size
        values = [
            v.tolist() if isinstance(v, np.ndarray) else (None if v is None else [empty if e is None else e for e in v])
            for v in values
        ]
    elif pa.types.is_list(typ):
        values = [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
    return pa.array(values, type=typ)


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """A table in schema order; a column missing from a row is null (an extractor that did not run)."""
    arrays = [to_arrow([r.get(f.name) for r in rows], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
