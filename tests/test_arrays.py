"""infsim.arrays gives what the pyarrow calls it stands for give (without pandas)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from infsim import arrays

NUMERIC = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(),
           pa.uint64(), pa.float32(), pa.float64()]  # fmt: skip


def _same(a: pa.Array, b: pa.Array) -> None:
    assert a.type == b.type
    assert a.null_count == b.null_count
    assert a.to_pylist() == b.to_pylist() or _nan_equal(a, b)
    assert a.is_null().equals(b.is_null())


def _nan_equal(a: pa.Array, b: pa.Array) -> bool:
    return np.array_equal(a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False),
                          equal_nan=True)  # fmt: skip


def _np_equal(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    if a.dtype == object:
        assert a.tolist() == b.tolist()
    else:
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


dtypes = st.sampled_from(
    ["int8", "int32", "int64", "uint16", "uint64", "float32", "float64", "bool"]
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_array_matches_pa_array(data) -> None:
    dtype = data.draw(dtypes)
    values = data.draw(hnp.arrays(dtype, st.integers(0, 70)))
    nan_is_null = data.draw(st.booleans())
    mask = data.draw(st.none() | hnp.arrays(bool, len(values)))
    _same(arrays.array(values, nan_is_null=nan_is_null, mask=mask),
          pa.array(values, from_pandas=nan_is_null, mask=mask))  # fmt: skip
    strided = values[::2]
    _same(arrays.array(strided), pa.array(strided))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), max_size=40), st.sampled_from(NUMERIC))
def test_array_of_python_numbers_with_type(values, kind) -> None:
    try:
        expected = pa.array(values, type=kind)
    except (pa.ArrowInvalid, OverflowError):
        with pytest.raises(pa.ArrowInvalid):
            arrays.array(values, kind)
        return
    _same(arrays.array(values, kind), expected)


def test_array_cast_is_checked() -> None:
    with pytest.raises(pa.ArrowInvalid):
        arrays.array(np.array([1.5]), pa.int32())
    with pytest.raises(pa.ArrowInvalid):
        arrays.array(np.array([2.0**40]), pa.int32())
    _same(arrays.array(np.array([3.0, 4.0]), pa.int32()), pa.array([3, 4], pa.int32()))
    with pytest.raises(TypeError):
        arrays.array(np.array(["a"]))
    with pytest.raises(TypeError):
        arrays.array([1, None])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.text(max_size=6), max_size=40))
def test_strings(values) -> None:
    _same(arrays.strings(values), pa.array(values, pa.string()))
    _same(arrays.strings(values, pa.large_string()), pa.array(values, pa.large_string()))


def test_scalar_and_empty_table() -> None:
    for value, kind in [(1.5, pa.float64()), (3, pa.int64()), (None, pa.string()),
                        ("", pa.string()), (True, pa.bool_()), (None, pa.int32())]:  # fmt: skip
        assert arrays.scalar(value, kind).equals(pa.scalar(value, kind))
    schema = pa.schema([("a", pa.int64()), ("s", pa.string())])
    assert arrays.empty_table(schema).equals(schema.empty_table())


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_to_numpy_matches_pyarrow(data) -> None:
    kind = data.draw(st.sampled_from([*NUMERIC, pa.bool_(), pa.string()]))
    if kind == pa.string():
        element = st.text(max_size=4)
    elif kind == pa.bool_():
        element = st.booleans()
    elif pa.types.is_floating(kind):
        element = st.floats(width=kind.bit_width)
    else:
        bits = kind.bit_width
        low, high = (0, 2**bits - 1) if pa.types.is_unsigned_integer(kind) else (
            -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)  # fmt: skip
        element = st.integers(low, high)
    chunks = data.draw(st.lists(st.lists(st.none() | element, max_size=12), max_size=4))
    chunked = pa.chunked_array([pa.array(c, kind) for c in chunks], kind)
    _np_equal(arrays.to_numpy(chunked), chunked.to_numpy())
    for chunk in chunked.chunks:
        _np_equal(arrays.to_numpy(chunk), chunk.to_numpy(zero_copy_only=False))
        if len(chunk) > 2:  # an array that starts inside its buffers
            part = chunk.slice(1, len(chunk) - 2)
            _np_equal(arrays.to_numpy(part), part.to_numpy(zero_copy_only=False))


def test_to_numpy_is_a_read_only_view_without_nulls() -> None:
    column = pa.array(np.arange(5.0))
    out = arrays.to_numpy(column)
    assert not out.flags.writeable
    assert np.shares_memory(out, column.to_numpy())
    with pytest.raises(TypeError):
        arrays.to_numpy(pa.array([[1]]))


def test_read_parquet_matches_read_table(tmp_path) -> None:
    table = pa.table({"a": np.arange(10), "b": np.arange(10.0)})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=3)
    for columns in (None, ["b"], ["b", "a"]):
        got, expected = arrays.read_parquet(path, columns), pq.read_table(path, columns=columns)
        assert got.equals(expected)
        assert got.schema == expected.schema


numbers = st.none() | st.integers(-(2**31), 2**31 - 1) | st.floats(allow_nan=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(), st.none() | st.text(max_size=3),
                          st.none() | st.integers(-(2**31), 2**31 - 1), numbers,
                          st.none() | st.booleans()), max_size=20))  # fmt: skip
def test_from_rows_and_nullable_match_pa_table(rows) -> None:
    schema = pa.schema([("t", pa.float64()), ("s", pa.string()), ("i", pa.int32()),
                        ("x", pa.float64()), ("b", pa.bool_())])  # fmt: skip
    got = arrays.from_rows(rows, schema)
    if not rows:
        assert got.equals(schema.empty_table())
        return
    columns = zip(*rows, strict=True)
    expected = pa.table(dict(zip(schema.names, columns, strict=True)), schema=schema)
    assert got.schema == expected.schema
    for a, b in zip(got.columns, expected.columns, strict=True):
        _same(a.combine_chunks(), b.combine_chunks())


def test_nullable_of_python_ints_into_floats() -> None:
    values = [2**53, None, 3]
    _same(arrays.nullable(values, pa.float64()), pa.array(values, pa.float64()))
    with pytest.raises(pa.ArrowInvalid):  # not exact in float64: refused, as by pyarrow
        arrays.nullable([2**53 + 1, None], pa.float64())
    _same(arrays.nullable([None, None], pa.int32()), pa.array([None, None], pa.int32()))
