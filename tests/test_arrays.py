"""infsim.arrays gives what the pyarrow calls it stands for give (without pandas)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_equals_string_matches_pc_equal(data) -> None:
    """Plain, large and dictionary-encoded strings, nulls, slices and several chunks."""
    alphabet = st.sampled_from(
        ["finished", "finishes", "failed", "rejected", "", "finishe", "ﬁnished", "é", "è"]
    )
    chunks = data.draw(st.lists(st.lists(st.none() | alphabet, max_size=30), max_size=4))
    kind = data.draw(st.sampled_from(["string", "large_string", "dictionary"]))
    built = []
    for values in chunks:
        chunk = pa.array(values, pa.large_string() if kind == "large_string" else pa.string())
        if kind == "dictionary":
            chunk = chunk.dictionary_encode()
        start = data.draw(st.integers(0, len(values)))
        built.append(chunk.slice(start, data.draw(st.integers(0, len(values) - start))))
    column = pa.chunked_array(built, type=built[0].type if built else pa.string())
    value = data.draw(alphabet)
    expected = pc.equal(column, value).to_numpy(zero_copy_only=False)
    expected = np.array([bool(v) if v is not None else False for v in expected], dtype=bool)
    got = arrays.equals_string(column, value)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, expected)
    if len(built) == 1:
        np.testing.assert_array_equal(arrays.equals_string(built[0], value), expected)


def test_equals_string_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="string columns"):
        arrays.equals_string(pa.array([1, 2]), "1")


INTEGERS = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64()]
EDGES = [2.0**k + d for k in (7, 8, 15, 16, 31, 32, 53, 63, 64) for d in (-1.0, 0.0, 1.0)]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_integer_casts_match_arrows_checked_cast(data) -> None:
    """Numbers (ints, floats with fractions, NaN, inf, the types' edges; nulls by NaN or
    by mask) to every integer type: the same array as Arrow's cast, or both refuse."""
    kind = data.draw(st.sampled_from(INTEGERS))
    dtype = data.draw(st.sampled_from(["int64", "int32", "uint64", "float64", "float32", "bool"]))
    if dtype.startswith("float"):
        element = st.floats(width=32 if dtype == "float32" else 64) | st.sampled_from(
            EDGES + [-e for e in EDGES]
        )
    else:
        element = None
    values = data.draw(hnp.arrays(dtype, st.integers(0, 12), elements=element))
    nan_is_null = data.draw(st.booleans())
    mask = data.draw(st.none() | hnp.arrays(bool, len(values)))
    _same_cast(values, kind, nan_is_null=nan_is_null, mask=mask)


def _same_cast(values: np.ndarray, kind: pa.DataType, **options) -> None:
    """`arrays.array(values, kind)` is Arrow's cast of the values, or both refuse."""
    try:
        expected = pa.array(values, from_pandas=options.get("nan_is_null", False),
                            mask=options.get("mask")).cast(kind)  # fmt: skip
    except (pa.ArrowInvalid, OverflowError):
        with pytest.raises(pa.ArrowInvalid):
            arrays.array(values, kind, **options)
        return
    _same(arrays.array(values, kind, **options), expected)


@pytest.mark.parametrize("kind", INTEGERS, ids=str)
def test_integer_casts_at_the_types_edges(kind) -> None:
    for value in [*EDGES, *(-e for e in EDGES), 0.5, -0.0, float("nan"), float("inf")]:
        _same_cast(np.array([value]), kind)
        _same_cast(np.array([value], dtype=np.float32), kind)
    for value in (2**63 - 1, -(2**63), 2**31, -(2**31) - 1, 2**32, 255, 256, -1):
        _same_cast(np.array([value], dtype=np.int64), kind)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_is_valid_and_raw_numbers_match_pyarrow(data) -> None:
    kind = data.draw(st.sampled_from([*NUMERIC, pa.null()]))
    values = data.draw(st.lists(st.none() | st.integers(0, 100), max_size=30))
    array = pa.array(values, pa.int64()).cast(kind) if kind != pa.null() else pa.nulls(
        len(values))  # fmt: skip
    start = data.draw(st.integers(0, len(values)))
    array = array.slice(start)
    valid = arrays.is_valid(array)
    np.testing.assert_array_equal(valid, pc.is_valid(array).to_numpy(zero_copy_only=False))
    if kind != pa.null() and len(array):
        kept = arrays.raw_numbers(array)[valid]
        assert kept.tolist() == [v for v in array.to_pylist() if v is not None]
