"""Trace-format plug-ins: the registry, load options and helpers shared by the readers.

A format is a `TraceFormat(name, read, sniff)`: `read(path, options) -> Trace` turns one
file into the canonical table or raises `InputError`; `sniff(path, head)` says whether a
file (first 4 KiB decoded as text in `head`) looks like this format, for `format="auto"`.
Readers never sort, fix or drop rows on their own: anything they drop is opt-in through
`LoadOptions`, counted in `Trace.notes` and logged.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from infsim.errors import InputError, did_you_mean
from infsim.registry import Registry
from infsim.workload.columns import RowLocator
from infsim.workload.trace import Trace

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadOptions:
    """What the caller allows a reader to do beyond a faithful conversion."""

    hash_block_size_tokens: int | None = None
    """Override the format's prefix hash block size (Mooncake 512, LLMServingSim 16)."""
    drop_zero_output: bool = False
    """Drop rows with 0 output tokens (failed requests in Azure/BurstGPT) instead of failing."""
    drop_failed: bool = False
    """Drop requests with a non-empty `errors` entry (vllm-bench) instead of failing."""


@dataclass(frozen=True)
class TraceFormat:
    name: str
    read: Callable[[Path, LoadOptions], Trace]
    sniff: Callable[[Path, str], bool]
    description: str


trace_formats: Registry[TraceFormat] = Registry("trace format")


def register_format(fmt: TraceFormat) -> TraceFormat:
    return trace_formats.register(fmt.name)(fmt)


# -- CSV helpers -------------------------------------------------------------------------

CSV_LINES = RowLocator(unit="line", offset=2)
"""Data row 0 of a CSV with a header is line 2 of the file."""


def read_csv_header(path: Path) -> list[str]:
    """Column names of a headed CSV; `InputError` if the file is empty."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        first = next(csv.reader(handle), None)
    if not first:
        raise InputError(f"{path}: the file is empty; expected a CSV header line")
    return list(first)


def read_csv_strings(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> pa.Table:
    """Read the named columns of a headed CSV as strings; error on missing/empty input."""
    names = read_csv_header(path)
    missing = [name for name in required if name not in names]
    if missing:
        hints = "".join(did_you_mean(name, names) for name in missing)
        raise InputError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}{hints}; "
            f"the header has {', '.join(map(repr, names))}"
        )
    wanted = [*required, *(name for name in optional if name in names)]
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted,
            column_types=dict.fromkeys(wanted, pa.string()),
            strings_can_be_null=True,
        ),
    )
    if table.num_rows == 0:
        raise InputError(f"{path}: the file has a header but no requests")
    return table


def parse_numbers(
    values: pa.Array | pa.ChunkedArray, column: str, path: Path, rows: RowLocator
) -> np.ndarray:
    """Parse a string column as float64, naming the first unparsable or empty cell."""
    numeric = pd.to_numeric(pd.Series(values.to_pylist(), dtype=object), errors="coerce")
    parsed = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(parsed))
    if len(bad):
        index = int(bad[0])
        raise InputError(
            f"{path}: {rows.describe(index)}: column {column!r} is {values[index].as_py()!r}; "
            "expected a number"
        )
    return parsed


# -- opt-in row dropping -----------------------------------------------------------------


def drop_rows(
    columns: Mapping[str, Any],
    drop: np.ndarray,
    rows: RowLocator,
    what: str,
) -> tuple[dict[str, Any], RowLocator, tuple[str, ...]]:
    """Remove rows where `drop` is True; return columns, their locator and a note."""
    if not drop.any():
        return dict(columns), rows, ()
    keep = np.flatnonzero(~drop)
    kept = {
        name: None if values is None else _take(values, keep) for name, values in columns.items()
    }
    first = rows.describe(int(np.flatnonzero(drop)[0]))
    note = f"dropped {int(drop.sum())} of {len(drop)} rows with {what} (first at {first})"
    logger.warning(note)
    return kept, rows.take(keep), (note,)


def _take(values: Any, keep: np.ndarray) -> Any:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values.take(pa.array(keep))
    return np.asarray(values)[keep]


def reject_or_drop(
    path: Path,
    columns: Mapping[str, Any],
    bad: np.ndarray,
    rows: RowLocator,
    *,
    what: str,
    allowed: bool,
    option: str,
) -> tuple[dict[str, Any], RowLocator, tuple[str, ...]]:
    """Fail on the first `bad` row unless the caller opted into dropping such rows."""
    if bad.any() and not allowed:
        first = rows.describe(int(np.flatnonzero(bad)[0]))
        raise InputError(
            f"{path}: {first}: {what}; {int(bad.sum())} of {len(bad)} rows are like this. "
            f"Pass {option} to drop them (the count is reported), or fix the file"
        )
    return drop_rows(columns, bad, rows, what)


def as_hash_ids_array(array: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A list<int64> column as one array (what `Trace.from_columns` accepts)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.list_(pa.int64()))


def require_no_nulls(table: pa.Table, names: Sequence[str], path: Path, rows: RowLocator) -> None:
    """Error naming the first row where one of `names` is missing (null)."""
    for name in names:
        column = table.column(name)
        if column.null_count:
            index = int(np.flatnonzero(pc.is_null(column).to_numpy(zero_copy_only=False))[0])
            raise InputError(f"{path}: {rows.describe(index)}: {name!r} is missing or null")
