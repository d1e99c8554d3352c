"""Column normalisation and validation for the canonical request table.

Every check reports the *first* offending row as the user sees it: a `RowLocator` maps a
table index to "line 17" (CSV/JSONL line in the source file) or "request 3" (index into a
JSON array), so the message points at something the user can open in an editor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from infsim import arrays, errors
from infsim.errors import SHOW_CHARS, InputError
from infsim.limits import HASH_IDS, MAX_ARRIVAL_S, REQUEST_TOKENS, TRACE_ROWS, Limit

HASH_IDS_TYPE = pa.list_(pa.int64())

TRACE_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.int64(), nullable=False),
        pa.field("arrival_s", pa.float64(), nullable=False),
        pa.field("num_prompt_tokens", pa.int64(), nullable=False),
        pa.field("num_output_tokens", pa.int64(), nullable=False),
        pa.field("prefix_hash_ids", HASH_IDS_TYPE, nullable=True),
        pa.field("session_id", pa.int64(), nullable=True),
        pa.field("priority", pa.int64(), nullable=False),
    ]
)
"""The canonical request table (see traces/SCHEMA.md)."""

REQUIRED_COLUMNS = ("arrival_s", "num_prompt_tokens", "num_output_tokens")
OPTIONAL_COLUMNS = ("request_id", "prefix_hash_ids", "session_id", "priority")


@dataclass(frozen=True)
class RowLocator:
    """Maps a row index of the table being built to the position a user can find.

    `numbers[i]` (when given) is the user-facing number of row i, else `offset + i`.
    `unit` is what the number counts: "line" (1-based file line), "row", "request".
    """

    unit: str = "row"
    offset: int = 0
    numbers: np.ndarray | None = None

    def describe(self, index: int) -> str:
        number = int(self.numbers[index]) if self.numbers is not None else self.offset + index
        return f"{self.unit} {number}"

    def take(self, indices: np.ndarray) -> RowLocator:
        """The locator for the sub-table holding rows `indices` of this one."""
        base = (
            self.numbers
            if self.numbers is not None
            else self.offset + np.arange(int(indices.max()) + 1 if len(indices) else 0)
        )
        return RowLocator(unit=self.unit, numbers=np.asarray(base)[indices])


def _fail(source: str, rows: RowLocator, index: int, column: str, problem: str) -> InputError:
    return InputError(f"{source}: {rows.describe(index)}: column {column!r} {problem}")


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def shown(value: Any, limit: int = SHOW_CHARS) -> str:
    """A bad trace value as a message shows it (`infsim.errors.shown`), numpy scalars as
    Python ones and whole floats as the text gave them (3.0 parsed from "3" as 3)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return errors.shown(value, limit)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _numbers(values: Any, column: str, source: str, rows: RowLocator) -> np.ndarray:
    """One value per row as an int or float NumPy array; anything else is an `InputError`
    naming the first offending row (strings, booleans, nested lists, nulls)."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        kind = values.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise InputError(
                f"{source}: column {column!r} has type {kind}; expected numbers"
                + (" (seconds)" if column == "arrival_s" else "")
            )
        if values.null_count:
            index = _first(~arrays.is_valid(values))
            raise _fail(source, rows, index or 0, column, "is missing (null)")
        values = arrays.to_numpy(values)
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError):  # ragged nesting
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    if array.ndim != 1:
        raise InputError(f"{source}: column {column!r} must hold one number per row")
    if array.dtype.kind in "iuf":
        return array
    for index, value in enumerate(array.tolist()):
        if not _is_number(value):
            raise _fail(source, rows, index, column, f"is {shown(value)}; expected a number")
    out = np.empty(len(array), dtype=np.float64)
    for index, value in enumerate(array.tolist()):
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise _fail(source, rows, index, column, f"is {shown(value)}; {_INT64}")
        out[index] = float(value)
    return out


_INT64 = "must fit in a signed 64-bit integer"


def _as_int64(
    values: Any,
    column: str,
    source: str,
    rows: RowLocator,
    *,
    minimum: int | None = None,
    maximum: Limit | None = None,
) -> np.ndarray:
    """Integers as int64, checked before the cast: integral, within `minimum` and the
    `maximum` limit (else within int64), so nothing wraps around."""
    array = _numbers(values, column, source, rows)
    if array.dtype.kind == "f":
        bad = _first(~np.isfinite(array) | (array != np.round(array)))
        if bad is not None:
            raise _fail(source, rows, bad, column, f"is {shown(array[bad])}; must be an integer")
    if minimum is not None:
        bad = _first(array < minimum)
        if bad is not None:
            raise _fail(source, rows, bad, column, f"is {shown(array[bad])}; must be >= {minimum}")
    top = maximum.value() if maximum is not None else None
    if top is not None:
        bad = _first(array > top)
        if bad is not None:
            raise _fail(source, rows, bad, column, maximum.message("", array[bad].item()))
    if array.dtype.kind == "u":
        bad = _first(array > np.iinfo(np.int64).max)
    elif array.dtype.kind == "f":
        bad = _first((array < -(2.0**63)) | (array >= 2.0**63))
    else:
        bad = None
    if bad is not None:
        raise _fail(source, rows, bad, column, f"is {shown(array[bad])}; {_INT64}")
    return array.astype(np.int64, copy=False)


def _check_arrivals(arrival_s: np.ndarray, source: str, rows: RowLocator) -> None:
    bad = _first(~np.isfinite(arrival_s))
    if bad is not None:
        raise _fail(source, rows, bad, "arrival_s", f"is {float(arrival_s[bad])}; must be finite")
    if len(arrival_s) and arrival_s[0] < 0:
        raise _fail(source, rows, 0, "arrival_s", f"is {float(arrival_s[0])}; must be >= 0")
    bad = _first(np.diff(arrival_s) < 0)
    if bad is not None:
        raise _fail(
            source,
            rows,
            bad + 1,
            "arrival_s",
            f"is {float(arrival_s[bad + 1])} s, earlier than the previous row's "
            f"{float(arrival_s[bad])} s; arrivals must be sorted (non-decreasing)",
        )
    if len(arrival_s) and arrival_s[-1] > MAX_ARRIVAL_S:
        bad = _first(arrival_s > MAX_ARRIVAL_S)
        raise _fail(
            source, rows, bad or 0, "arrival_s",
            f"is {float(arrival_s[bad or 0])!r} s; at most {MAX_ARRIVAL_S:.0e} s (about 317 "
            "years) after the trace start are accepted",
        )  # fmt: skip


def _check_unique(request_id: np.ndarray, source: str, rows: RowLocator) -> None:
    order = np.argsort(request_id, kind="stable")
    dup_sorted = np.flatnonzero(np.diff(request_id[order]) == 0)
    if len(dup_sorted):
        index = int(order[dup_sorted + 1].min())
        raise _fail(
            source,
            rows,
            index,
            "request_id",
            f"repeats id {int(request_id[index])}; ids must be unique",
        )


def _hash_ids_array(values: Any, source: str, rows: RowLocator) -> pa.Array:
    """Lists of int64 ids (or nulls), one per row; empty lists become null."""
    no_ids = isinstance(values, pa.Array) and values.null_count == len(values)
    if no_ids and values.type == HASH_IDS_TYPE:  # a synthetic workload's
        return values
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks > 1:
            HASH_IDS.check(_num_values(values), "the number of prefix hash ids", source)
        values = values.combine_chunks() if values.num_chunks else pa.nulls(0, HASH_IDS_TYPE)
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(values, type=HASH_IDS_TYPE, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            raise _bad_hash_row(values, source, rows) from None
    kind = values.type
    if pa.types.is_null(kind):
        return pa.nulls(len(values), HASH_IDS_TYPE)
    if not (
        (
            pa.types.is_list(kind)
            or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)
        )
        and (pa.types.is_integer(kind.value_type) or pa.types.is_null(kind.value_type))
    ):
        raise InputError(
            f"{source}: column 'prefix_hash_ids' has type {kind}; expected lists of integers"
        )
    HASH_IDS.check(_num_values(values), "the number of prefix hash ids", source)
    flat = pc.list_flatten(values)
    if pa.types.is_unsigned_integer(flat.type) and len(flat):
        over = arrays.to_numpy(pc.greater(flat, arrays.scalar(2**63 - 1, flat.type)))
        if over.any():
            index = int(np.flatnonzero(over)[0])
            row = int(pc.list_parent_indices(values)[index].as_py())
            raise _fail(source, rows, row, "prefix_hash_ids",
                        f"holds {flat[index].as_py()}; ids {_INT64}")  # fmt: skip
    lists = values.cast(HASH_IDS_TYPE)
    lengths = pc.list_value_length(lists)
    empty = pc.fill_null(
        pc.equal(lengths, arrays.scalar(0, lengths.type)), arrays.scalar(False, pa.bool_())
    )
    if pc.any(empty).as_py():  # an empty list carries no identity: store it as null
        lists = pc.if_else(empty, arrays.scalar(None, HASH_IDS_TYPE), lists)
    return lists


def _num_values(values: pa.Array | pa.ChunkedArray) -> int:
    import pyarrow.compute as pc

    lengths = pc.list_value_length(values)
    return int(pc.sum(lengths).as_py() or 0)


def _fits_int64(value: Any) -> bool:
    if isinstance(value, float | np.floating) and not (
        np.isfinite(value) and value == np.round(value)
    ):
        return False
    return -(2**63) <= value < 2**63


def _bad_hash_row(values: Any, source: str, rows: RowLocator) -> InputError:
    """The first row that is neither null nor a list of int64-sized integers."""
    for index, item in enumerate(values):
        if item is None:
            continue
        if isinstance(item, str | bytes | dict) or not hasattr(item, "__iter__"):
            problem = f"is {shown(item)}; expected a list of integers or null"
            return _fail(source, rows, index, "prefix_hash_ids", problem)
        for value in item:
            if not _is_number(value) or not _fits_int64(value):
                problem = f"holds {shown(value)}; ids are integers that fit in 64 bits"
                return _fail(source, rows, index, "prefix_hash_ids", problem)
    return InputError(f"{source}: column 'prefix_hash_ids': expected lists of integers or null")


def _check_hash_ids(
    hash_ids: pa.Array,
    total_tokens: np.ndarray,
    block_size_tokens: int | None,
    source: str,
    rows: RowLocator,
) -> None:
    if hash_ids.null_count == len(hash_ids):
        return
    import pyarrow.compute as pc

    if block_size_tokens is None:
        index = _first(arrays.is_valid(hash_ids))
        raise _fail(
            source, rows, index or 0, "prefix_hash_ids",
            "is set but the trace has no hash_block_size_tokens; give the block size",
        )  # fmt: skip
    flat = pc.list_flatten(hash_ids)
    if flat.null_count:
        index = _first(~arrays.is_valid(flat)) or 0
        row = int(pc.list_parent_indices(hash_ids)[index].as_py())
        raise _fail(source, rows, row, "prefix_hash_ids", "holds a null id inside its list")
    lengths = pc.list_value_length(hash_ids)
    lengths = arrays.to_numpy(pc.fill_null(lengths, arrays.scalar(0, lengths.type)))
    max_blocks = -(-total_tokens // block_size_tokens)
    bad = _first(lengths > max_blocks)
    if bad is not None:
        raise _fail(
            source, rows, bad, "prefix_hash_ids",
            f"has {int(lengths[bad])} block ids; at most ceil((prompt + output) / "
            f"{block_size_tokens}) = {int(max_blocks[bad])} are allowed",
        )  # fmt: skip


def hash_ids_from_runs(
    starts: np.ndarray, lengths: np.ndarray, per_row: np.ndarray
) -> pa.ListArray:
    """A prefix_hash_ids column built without Python lists: row i holds the next
    `per_row[i]` ids of the concatenated runs range(starts[k], starts[k] + lengths[k])."""
    starts = np.asarray(starts, np.int64)
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if total != int(np.sum(per_row)):
        raise ValueError("runs and rows disagree on the number of ids")
    run_offsets = np.cumsum(lengths) - lengths
    values = np.arange(total, dtype=np.int64) + np.repeat(starts - run_offsets, lengths)
    offsets = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
    return pa.ListArray.from_arrays(arrays.array(offsets), arrays.array(values, pa.int64()))


def check_block_size(value: Any, source: str) -> int | None:
    """`hash_block_size_tokens`: null or an integer from 1 to the token limit."""
    if value is None:
        return None
    if not isinstance(value, int | np.integer) or isinstance(value, bool | np.bool_):
        raise InputError(
            f"{source}: hash_block_size_tokens is {shown(value)}; expected an integer >= 1"
        )
    if value < 1:
        raise InputError(f"{source}: hash_block_size_tokens is {value}; must be >= 1")
    REQUEST_TOKENS.check(int(value), "hash_block_size_tokens", source)
    return int(value)


def _check_names(columns: Mapping[str, Any], source: str) -> int:
    unknown = sorted(set(columns) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        allowed = ", ".join(TRACE_SCHEMA.names)
        raise InputError(f"{source}: unknown column(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {', '.join(missing)}")
    lengths = {}
    for name, values in columns.items():
        if values is None:
            continue
        try:
            lengths[name] = len(values)
        except TypeError:
            raise InputError(f"{source}: column {name!r} is not a sequence of values") from None
    if len(set(lengths.values())) > 1:
        raise InputError(f"{source}: columns have different lengths {lengths}")
    TRACE_ROWS.check(lengths["arrival_s"], "the number of rows", source)
    return lengths["arrival_s"]


def build_table(
    columns: Mapping[str, Any],
    *,
    hash_block_size_tokens: int | None,
    source: str,
    rows: RowLocator,
) -> pa.Table:
    """Validate `columns` (name → array-like) and return a table with `TRACE_SCHEMA`.

    Raises `InputError` naming `source`, the first bad row (through `rows`) and column:
    wrong types, nulls, non-integers, values out of range (token counts at most
    `limits.REQUEST_TOKENS`, ids within int64) are all checked before any cast.
    Missing optional columns default to: request_id = 0..n-1, prefix_hash_ids and
    session_id = null, priority = 0.
    """
    num_rows = _check_names(columns, source)
    hash_block_size_tokens = check_block_size(hash_block_size_tokens, source)
    arrival_s = _numbers(columns["arrival_s"], "arrival_s", source, rows).astype(np.float64)
    _check_arrivals(arrival_s, source, rows)
    ints = {}
    for name in ("num_prompt_tokens", "num_output_tokens"):
        ints[name] = _as_int64(columns[name], name, source, rows, minimum=1, maximum=REQUEST_TOKENS)
    request_id = columns.get("request_id")
    request_id = np.arange(num_rows) if request_id is None else request_id
    request_id = _as_int64(request_id, "request_id", source, rows)
    _check_unique(request_id, source, rows)
    priority = columns.get("priority")
    priority = np.zeros(num_rows, np.int64) if priority is None else priority
    priority = _as_int64(priority, "priority", source, rows)
    hash_ids = columns.get("prefix_hash_ids")
    hash_ids = pa.nulls(num_rows, HASH_IDS_TYPE) if hash_ids is None else hash_ids
    hash_ids = _hash_ids_array(hash_ids, source, rows)
    total_tokens = ints["num_prompt_tokens"] + ints["num_output_tokens"]
    _check_hash_ids(hash_ids, total_tokens, hash_block_size_tokens, source, rows)
    session_id = columns.get("session_id")
    session_id = pa.nulls(num_rows, pa.int64()) if session_id is None else session_id
    arrays = [request_id, arrival_s, ints["num_prompt_tokens"], ints["num_output_tokens"]]
    arrays += [hash_ids, _nullable_int64(session_id, source, rows), priority]
    return pa.Table.from_arrays([_arrow(a) for a in arrays], schema=TRACE_SCHEMA)


def _arrow(values: Any) -> pa.Array:
    return values if isinstance(values, pa.Array) else arrays.array(values)


def _nullable_int64(values: Any, source: str, rows: RowLocator) -> pa.Array:
    """session_id: integers (int64-sized) or null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.nulls(0, pa.int64())
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "biuf":
        values = arrays.array(values, nan_is_null=True)
    elif not isinstance(values, pa.Array):
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            values = pa.array([None if v is None else shown(v) for v in values], pa.string())
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.int64())
    present = arrays.is_valid(values)
    if present.all():
        dense = _as_int64(values, "session_id", source, rows)
    else:
        kept = np.flatnonzero(present)
        if pa.types.is_integer(values.type):  # without Array.filter's pyarrow.compute (~40 ms)
            kept_values: Any = arrays.raw_numbers(values)[kept]
        else:
            kept_values = values.filter(arrays.array(present))
        dense = _as_int64(kept_values, "session_id", source, rows.take(kept))
    parsed = np.zeros(len(values), np.int64)
    parsed[present] = dense
    return arrays.array(parsed, mask=~present)
