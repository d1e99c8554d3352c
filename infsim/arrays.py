"""Arrow arrays from numpy arrays and Python values, and back, without importing pandas.

pyarrow imports pandas (~0.17 s, a fifth of a small run's whole process) the first time
it converts Python or numpy values to Arrow (`pa.array`, `pa.scalar`, a Python number
given to a `pyarrow.compute` function, `Schema.empty_table`), converts an array to numpy
(`Array.to_numpy`, `np.asarray(array)`), or reads Parquet through `pq.read_table`: its
converters look up pandas' missing-value objects. A run needs none of that, so the run
path builds and reads its columns here, through buffers (`pa.Array.from_buffers` over
numpy memory, `np.frombuffer` over Arrow's), which never touch pandas. Each function
gives what the pyarrow call it stands for gives (`tests/test_arrays.py` compares them);
`tests/test_startup.py` checks that a roofline run does not import pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_NUMBERS = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}
_STRINGS = (pa.string(), pa.large_string())


def array(
    values: np.ndarray | Sequence,
    type: pa.DataType | None = None,
    *,
    nan_is_null: bool = False,
    mask: np.ndarray | None = None,
) -> pa.Array:
    """`pa.array(values, type, from_pandas=nan_is_null, mask=mask)` for numbers or
    booleans: a 1-D numpy array (wrapped without a copy when contiguous) or a sequence of
    Python numbers. NaN is null with `nan_is_null` unless a `mask` is given (True = null),
    as in pyarrow. With `type`, the values are cast to it with Arrow's checked cast (an
    out-of-range or fractional value raises `pa.ArrowInvalid`)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "biuf":
        raise TypeError(f"array() takes a 1-D array of numbers, not {values.dtype}")
    if values.dtype.kind == "b":
        natural = pa.bool_()
        data = np.packbits(values, bitorder="little")
    else:
        natural = pa.from_numpy_dtype(values.dtype)
        data = np.ascontiguousarray(values)
    if mask is not None:  # as pyarrow: a mask alone says which are null
        nulls = np.asarray(mask, dtype=bool)
    elif nan_is_null and values.dtype.kind == "f":
        nulls = np.isnan(values)
    else:
        nulls = None
    validity, null_count = _validity(nulls)
    out = pa.Array.from_buffers(
        natural, len(values), [validity, pa.py_buffer(data)], null_count=null_count
    )
    return out if type is None or type == natural else out.cast(type)


def nullable(values: Sequence[float | int | bool | None], type: pa.DataType) -> pa.Array:
    """`pa.array(values, type)` for a sequence of Python numbers or booleans and None
    (null)."""
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    if not nulls.any():
        return array(values, type)
    filled = [0 if v is None else v for v in values]
    return array(filled, type, mask=nulls)


def from_rows(rows: Sequence[Sequence], schema: pa.Schema) -> pa.Table:
    """`pa.table(dict(zip(schema.names, zip(*rows))), schema=schema)`: a table of row
    tuples (numbers, booleans, str; None = null), one value per field in order."""
    if not rows:
        return empty_table(schema)
    columns = [
        strings(values, field.type) if field.type in _STRINGS else nullable(values, field.type)
        for field, values in zip(schema, zip(*rows, strict=True), strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def strings(values: Sequence[str | None], type: pa.DataType | None = None) -> pa.Array:
    """`pa.array(values, type)` for a sequence of `str` (None = null); `type` is
    `pa.string()` (the default) or `pa.large_string()`."""
    type = pa.string() if type is None else type
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    encoded = [b"" if v is None else str.encode(v) for v in values]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if type == pa.string():
        if offsets[-1] >= 2**31:
            raise pa.ArrowCapacityError("strings over 2 GiB: use pa.large_string()")
        offsets = offsets.astype(np.int32)
    elif type != pa.large_string():
        raise TypeError(f"strings() builds string or large_string arrays, not {type}")
    validity, null_count = _validity(nulls)
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(
        type, len(encoded), [validity, pa.py_buffer(offsets), data], null_count=null_count
    )


def scalar(value: object, type: pa.DataType) -> pa.Scalar:
    """`pa.scalar(value, type)` for a number, a bool, a str or None."""
    if value is None:
        return pa.nulls(1, type)[0]
    if type in _STRINGS:
        return strings([value], type)[0]  # type: ignore[list-item]
    return array([value], type)[0]


def empty_table(schema: pa.Schema) -> pa.Table:
    """`schema.empty_table()`: a table of no rows."""
    return pa.Table.from_batches([], schema)


def read_parquet(path: Path | str, columns: Sequence[str] | None = None) -> pa.Table:
    """`pq.read_table(path, columns=columns)` of one file (its row groups, in order)."""
    with pq.ParquetFile(path) as file:
        return file.read(columns=list(columns) if columns is not None else None)


def to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """`values.to_numpy(zero_copy_only=False)` for numbers, booleans and strings: a
    read-only view of a one-chunk numeric column without nulls, else a copy; nulls are NaN
    (integers become float64), None in a boolean or string column (an object array)."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            return to_numpy(values.chunk(0))
        if values.num_chunks == 0:
            return np.empty(0, dtype=_dtype(values.type))
        return np.concatenate([to_numpy(chunk) for chunk in values.chunks])
    kind = values.type
    if kind in _STRINGS:
        out = np.empty(len(values), dtype=object)
        out[:] = values.to_pylist()
        return out
    dtype = _dtype(kind)  # raises for other types
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=dtype)
    buffers = values.buffers()
    if kind == pa.bool_():
        bits = np.frombuffer(buffers[1], dtype=np.uint8)
        data = np.unpackbits(bits, count=values.offset + n, bitorder="little")[values.offset :]
        data = data.astype(bool)
    else:
        itemsize = np.dtype(dtype).itemsize
        data = np.frombuffer(buffers[1], dtype=dtype, count=n, offset=values.offset * itemsize)
    if not values.null_count:
        if kind != pa.bool_():
            data.flags.writeable = False  # a view of Arrow's memory, as pyarrow gives it
        return data
    valid = _valid(buffers[0], values.offset, n)
    if kind == pa.bool_():
        out = data.astype(object)
        out[~valid] = None
        return out
    out = data.astype(np.float64 if data.dtype.kind in "iu" else data.dtype)
    out[~valid] = np.nan
    return out


def _dtype(kind: pa.DataType) -> type | np.dtype:
    if kind == pa.bool_():
        return np.bool_
    if kind in _STRINGS:
        return np.dtype(object)
    try:
        return _NUMBERS[kind]
    except KeyError:
        raise TypeError(f"to_numpy() reads numbers, booleans and strings, not {kind}") from None


def _validity(nulls: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    if nulls is None or not nulls.any():
        return None, 0
    return pa.py_buffer(np.packbits(~nulls, bitorder="little")), int(nulls.sum())


def _valid(bitmap: pa.Buffer, offset: int, n: int) -> np.ndarray:
    bits = np.frombuffer(bitmap, dtype=np.uint8)
    return np.unpackbits(bits, count=offset + n, bitorder="little")[offset:].astype(bool)
