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

Nor `pyarrow.compute`, whose import alone takes ~40 ms (a tenth of a small run's process;
`Array.cast`, `.filter`, `.is_null` import it too): the run path compares strings
(`equals_string`), reads validity (`is_valid`) and casts to integers (`array`) in numpy,
and the trace parsers import it in the functions that use it.
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
    if type is not None and type != natural and pa.types.is_integer(type):
        data, natural = _checked_integers(values, nulls, type), type  # no pyarrow.compute
    validity, null_count = _validity(nulls)
    out = pa.Array.from_buffers(
        natural, len(values), [validity, pa.py_buffer(data)], null_count=null_count
    )
    return out if type is None or type == natural else out.cast(type)


def _checked_integers(
    values: np.ndarray, nulls: np.ndarray | None, type: pa.DataType
) -> np.ndarray:
    """Numbers as an integer type, checked as Arrow's cast (which imports `pyarrow.compute`,
    ~40 ms) checks them: a valid value that is fractional, not finite or out of the type's
    range raises `pa.ArrowInvalid`."""
    target = np.dtype(_NUMBERS[type])
    valid = values if nulls is None else values[~nulls]
    if valid.dtype.kind == "b":
        valid = valid.astype(np.uint8)
    if valid.dtype.kind == "f":
        whole = np.isfinite(valid) & (np.trunc(valid) == valid)
        if not whole.all():
            value = valid[np.flatnonzero(~whole)[0]]
            raise pa.ArrowInvalid(f"Float value {value} was truncated converting to {type}")
    if valid.size:
        info = np.iinfo(target)
        low, high = valid.min(), valid.max()
        if valid.dtype.kind == "f":  # exact: both bounds are powers of two, or one less
            out = low < float(info.min) or high >= float(info.max) + 1
        else:
            out = int(low) < info.min or int(high) > info.max
        if out:
            bad = low if low < info.min else high
            raise pa.ArrowInvalid(f"Integer value {bad} not in range: {info.min} to {info.max}")
    with np.errstate(invalid="ignore"):  # a null slot's NaN becomes any integer
        return values.astype(target)


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
    if kind == pa.bool_():
        bits = np.frombuffer(values.buffers()[1], dtype=np.uint8)
        data = np.unpackbits(bits, count=values.offset + n, bitorder="little")[values.offset :]
        data = data.astype(bool)
    else:
        data = raw_numbers(values)  # a read-only view of Arrow's memory, as pyarrow gives it
    if not values.null_count:
        return data
    valid = is_valid(values)
    if kind == pa.bool_():
        out = data.astype(object)
        out[~valid] = None
        return out
    out = data.astype(np.float64 if data.dtype.kind in "iu" else data.dtype)
    out[~valid] = np.nan
    return out


def equals_string(values: pa.Array | pa.ChunkedArray, value: str) -> np.ndarray:
    """`pc.equal(values, value)` as a numpy boolean array, a null row False, for a string,
    large_string or dictionary-of-strings column: the rows' bytes compared in numpy
    (importing `pyarrow.compute` alone takes ~40 ms, a tenth of a small run's process)."""
    if isinstance(values, pa.ChunkedArray):
        parts = [equals_string(chunk, value) for chunk in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    n = len(values)
    if pa.types.is_dictionary(values.type):
        codes = raw_numbers(values.indices).astype(np.int64)
        hits = np.append(equals_string(values.dictionary, value), False)
        if values.indices.null_count:  # a null row's code is undefined: point it at the False
            codes[~is_valid(values.indices)] = len(hits) - 1
        return hits[codes]
    if values.type not in _STRINGS:
        raise TypeError(f"equals_string() compares string columns, not {values.type}")
    if n == 0:
        return np.zeros(0, dtype=bool)
    buffers = values.buffers()
    width = 4 if values.type == pa.string() else 8
    offsets = np.frombuffer(
        buffers[1], dtype=f"<i{width}", count=n + 1, offset=values.offset * width
    )
    target = np.frombuffer(str.encode(value), dtype=np.uint8)
    rows = np.flatnonzero(np.diff(offsets) == len(target))
    if len(target) and rows.size:
        data = np.frombuffer(buffers[2], dtype=np.uint8)
        starts = offsets[rows]
        same = np.ones(rows.size, dtype=bool)
        for k, byte in enumerate(target):  # a byte position at a time: no rows x bytes array
            same &= data[starts + k] == byte
        rows = rows[same]
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    if values.null_count:
        out &= is_valid(values)
    return out


def raw_numbers(values: pa.Array) -> np.ndarray:
    """A numeric array's data buffer as numpy, a read-only view: what a null row holds is
    undefined (select the valid rows with `is_valid`)."""
    dtype = _NUMBERS[values.type]
    itemsize = np.dtype(dtype).itemsize
    data = np.frombuffer(
        values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * itemsize
    )
    data.flags.writeable = False  # (a buffer over numpy memory would be writeable)
    return data


def is_valid(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """`pc.is_valid(values)` as a numpy boolean array (read from the validity bitmap)."""
    if isinstance(values, pa.ChunkedArray):
        parts = [is_valid(chunk) for chunk in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    if not values.null_count:
        return np.ones(len(values), dtype=bool)
    if pa.types.is_null(values.type):
        return np.zeros(len(values), dtype=bool)
    return _valid(values.buffers()[0], values.offset, len(values))


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
