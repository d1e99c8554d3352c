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
import pyarrow.compute as pc

from infsim.errors import InputError

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


def _as_int64(values: Any, column: str, source: str, rows: RowLocator) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    as_float = np.asarray(array, dtype=np.float64)
    bad = _first(~np.isfinite(as_float) | (as_float != np.round(as_float)))
    if bad is not None:
        raise _fail(source, rows, bad, column, f"is {array[bad].item()!r}; must be an integer")
    return as_float.astype(np.int64)


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


def _check_positive(values: np.ndarray, column: str, source: str, rows: RowLocator) -> None:
    bad = _first(values < 1)
    if bad is not None:
        raise _fail(source, rows, bad, column, f"is {int(values[bad])}; must be >= 1")


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


def _hash_ids_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    array = values if isinstance(values, pa.Array) else pa.array(values, type=HASH_IDS_TYPE)
    array = array.cast(HASH_IDS_TYPE)
    empty = pc.fill_null(pc.equal(pc.list_value_length(array), 0), False)
    if pc.any(empty).as_py():  # an empty list carries no identity: store it as null
        array = pc.if_else(empty, pa.scalar(None, HASH_IDS_TYPE), array)
    return array


def _check_hash_ids(
    hash_ids: pa.Array,
    total_tokens: np.ndarray,
    block_size_tokens: int | None,
    source: str,
    rows: RowLocator,
) -> None:
    if hash_ids.null_count == len(hash_ids):
        return
    if block_size_tokens is None:
        index = _first(~np.asarray(hash_ids.is_null()))
        raise _fail(
            source, rows, index or 0, "prefix_hash_ids",
            "is set but the trace has no hash_block_size_tokens; give the block size",
        )  # fmt: skip
    if hash_ids.values.null_count:
        raise InputError(f"{source}: column 'prefix_hash_ids' holds null ids inside a list")
    lengths = pc.fill_null(pc.list_value_length(hash_ids), 0).to_numpy()
    max_blocks = -(-total_tokens // block_size_tokens)
    bad = _first(lengths > max_blocks)
    if bad is not None:
        raise _fail(
            source, rows, bad, "prefix_hash_ids",
            f"has {int(lengths[bad])} block ids; at most ceil((prompt + output) / "
            f"{block_size_tokens}) = {int(max_blocks[bad])} are allowed",
        )  # fmt: skip


def _check_names(columns: Mapping[str, Any], source: str) -> int:
    unknown = sorted(set(columns) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        allowed = ", ".join(TRACE_SCHEMA.names)
        raise InputError(f"{source}: unknown column(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {', '.join(missing)}")
    lengths = {name: len(values) for name, values in columns.items() if values is not None}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{source}: columns have different lengths {lengths}")
    return lengths["arrival_s"]


def build_table(
    columns: Mapping[str, Any],
    *,
    hash_block_size_tokens: int | None,
    source: str,
    rows: RowLocator,
) -> pa.Table:
    """Validate `columns` (name → array-like) and return a table with `TRACE_SCHEMA`.

    Raises `InputError` naming `source`, the first bad row (through `rows`) and column.
    Missing optional columns default to: request_id = 0..n-1, prefix_hash_ids and
    session_id = null, priority = 0.
    """
    num_rows = _check_names(columns, source)
    if hash_block_size_tokens is not None and hash_block_size_tokens < 1:
        raise InputError(f"{source}: hash_block_size_tokens is {hash_block_size_tokens}; >= 1")
    arrival_s = np.asarray(columns["arrival_s"], dtype=np.float64)
    _check_arrivals(arrival_s, source, rows)
    ints = {}
    for name in ("num_prompt_tokens", "num_output_tokens"):
        ints[name] = _as_int64(columns[name], name, source, rows)
        _check_positive(ints[name], name, source, rows)
    request_id = columns.get("request_id")
    request_id = np.arange(num_rows) if request_id is None else request_id
    request_id = _as_int64(request_id, "request_id", source, rows)
    _check_unique(request_id, source, rows)
    priority = columns.get("priority")
    priority = np.zeros(num_rows, np.int64) if priority is None else priority
    priority = _as_int64(priority, "priority", source, rows)
    hash_ids = columns.get("prefix_hash_ids")
    hash_ids = pa.nulls(num_rows, HASH_IDS_TYPE) if hash_ids is None else hash_ids
    hash_ids = _hash_ids_array(hash_ids)
    total_tokens = ints["num_prompt_tokens"] + ints["num_output_tokens"]
    _check_hash_ids(hash_ids, total_tokens, hash_block_size_tokens, source, rows)
    session_id = columns.get("session_id")
    session_id = pa.nulls(num_rows, pa.int64()) if session_id is None else session_id
    arrays = [request_id, arrival_s, ints["num_prompt_tokens"], ints["num_output_tokens"]]
    arrays += [hash_ids, _nullable_int64(session_id), priority]
    return pa.Table.from_arrays([_arrow(a) for a in arrays], schema=TRACE_SCHEMA)


def _arrow(values: Any) -> pa.Array:
    return values if isinstance(values, pa.Array) else pa.array(values)


def _nullable_int64(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values.cast(pa.int64())
    return pa.array(values, type=pa.int64(), from_pandas=True)
