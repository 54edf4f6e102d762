import numpy as np
import pyarrow as pa

from emoprep.extraction.engine.columns import to_arrow


def test_matrix_fast_path_equals_generic_conversion() -> None:
    typ = pa.list_(pa.list_(pa.float32(), 4))
    rng = np.random.default_rng(1)
    values = [rng.normal(size=(3, 4)).astype(np.float32), None, np.zeros((0, 4), np.float32), rng.normal(size=(1, 4))]
    fast = to_arrow(values, typ)
    slow = pa.array([v.tolist() if v is not None else None for v in values], type=typ)
    assert fast.equals(slow)
    assert fast.null_count == 1 and len(fast[2]) == 0


def test_rows_with_null_elements_take_the_generic_path() -> None:
    typ = pa.list_(pa.list_(pa.float32(), 2))
    arr = to_arrow([[[1.0, 2.0], None, [None, 3.0]]], typ)
    assert arr.to_pylist() == [[[1.0, 2.0], [None, None], [None, 3.0]]]


def test_float16_storage() -> None:
    typ = pa.list_(pa.list_(pa.float16(), 2))
    arr = to_arrow([np.array([[0.5, -1.0]], dtype=np.float32)], typ)
    assert arr.type == typ and arr.to_pylist()[0][0][0] == 0.5


def test_missing_fixed_size_elements_become_all_null_values_and_read_back(tmp_path) -> None:  # noqa: ANN001
    """pyarrow < 26 cannot read null fixed_size_list elements from Parquet (GH-35692)."""
    import pyarrow.parquet as pq

    typ = pa.list_(pa.list_(pa.float32(), 3))
    arr = to_arrow([[[1.0, 2.0, 3.0], None, [4.0, 5.0, 6.0]], None], typ)
    assert arr.to_pylist() == [[[1.0, 2.0, 3.0], [None, None, None], [4.0, 5.0, 6.0]], None]
    pq.write_table(pa.table({"x": arr}), tmp_path / "x.parquet")
    assert pq.read_table(tmp_path / "x.parquet").column("x").to_pylist() == arr.to_pylist()


def test_schema_has_no_top_level_fixed_size_columns() -> None:
    """A null top-level fixed_size_list is unreadable for pyarrow < 26: the schema must not allow one."""
    from emoprep.format.schema import utterance_schema

    for field in utterance_schema():
        assert not (pa.types.is_fixed_size_list(field.type) and field.nullable), field.name
