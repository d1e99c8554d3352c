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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from infsim import arrays
from infsim.errors import InputError, did_you_mean
from infsim.limits import TRACE_BYTES, TRACE_ROWS
from infsim.registry import Registry
from infsim.textio import read_text
from infsim.workload import canonical
from infsim.workload.columns import RowLocator, shown
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
    columns: tuple[tuple[str, str], ...] = ()
    """The `csv` format's mapping: (infsim column, file column) pairs."""
    time_unit: str = "s"
    """The `csv` format's arrival time unit: s, ms, us or ns."""


@dataclass(frozen=True)
class TraceFormat:
    name: str
    read: Callable[[Path, LoadOptions], Trace]
    sniff: Callable[[Path, str], bool]
    description: str


trace_formats: Registry[TraceFormat] = Registry("trace format")


def register_format(fmt: TraceFormat) -> TraceFormat:
    return trace_formats.register(fmt.name)(fmt)


# -- reading files -----------------------------------------------------------------------


def read_utf8(path: Path) -> bytes:
    """The whole trace file as UTF-8 bytes (a leading BOM dropped): any byte that is not
    UTF-8 is an `InputError` naming the line and offset (through `textio.read_text`); a
    file over `limits.TRACE_BYTES` is refused before it is read."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise InputError(f"{path}: cannot read the trace file: {err.strerror or err}") from None
    TRACE_BYTES.check(size, "the file's size", str(path))
    return read_text(path, "trace file").encode("utf-8")


def read_head(path: Path, size: int) -> bytes:
    """The first `size` bytes of `path` (for sniffing); `InputError` if it cannot be read."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as err:
        raise InputError(f"{path}: cannot read the trace file: {err.strerror or err}") from None


def arrow_reason(exc: BaseException) -> str:
    """pyarrow's message, first line, without echoing a whole row."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:120] + "…"


# -- CSV helpers -------------------------------------------------------------------------

CSV_LINES = RowLocator(unit="line", offset=2)
"""Data row 0 of a CSV with a header is line 2 of the file (when no line is blank and no
quoted field spans lines; `csv_row_lines` covers the other cases)."""

MAX_HEADER_BYTES = 64 * 1024
"""Longest CSV header line accepted (the known formats' headers are under 200 bytes)."""

_NEWLINE = re.compile(rb"\r\n|\r|\n")


def _header_fields(line: bytes, path: Path) -> list[str]:
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: line 1: the header is not UTF-8 text (byte 0x{line[err.start]:02x} at "
            f"offset {err.start}); save the file as UTF-8"
        ) from None
    try:
        return next(csv.reader([text]), [])
    except csv.Error as err:
        raise InputError(f"{path}: line 1: not a CSV header line ({err})") from None


def read_csv_header(path: Path) -> list[str]:
    """Column names of a headed CSV, from at most `MAX_HEADER_BYTES` of its first line;
    `InputError` if the file is empty, the line is longer or not UTF-8."""
    head = read_head(path, MAX_HEADER_BYTES + 1)
    return _header_from(head, path)


def _header_from(data: bytes, path: Path) -> list[str]:
    line = _NEWLINE.split(data[: MAX_HEADER_BYTES + 1], maxsplit=1)[0]
    if len(line) > MAX_HEADER_BYTES:
        raise InputError(
            f"{path}: line 1 (the header) is longer than {MAX_HEADER_BYTES:,} bytes; "
            "expected a CSV header line naming the columns"
        )
    first = _header_fields(line, path)
    if not first or first == [""]:
        raise InputError(f"{path}: the file is empty; expected a CSV header line")
    return first


def read_csv_strings(
    path: Path, required: Sequence[str], optional: Sequence[str] = ()
) -> tuple[pa.Table, RowLocator]:
    """Read the named columns of a headed CSV as strings, and the file line of each row.

    Errors (`InputError`) on an empty file, missing or repeated columns, ragged or truncated
    rows (naming the line), more lines than `limits.TRACE_ROWS` allows.
    """
    data = read_utf8(path)
    names = _header_from(data, path)
    missing = [name for name in required if name not in names]
    if missing:
        short_names = [name for name in names if len(name) <= 100]
        hints = "".join(did_you_mean(name, short_names) for name in missing)
        header = ", ".join(shown(name, 40) for name in names[:20])
        more = f" and {len(names) - 20:,} more" if len(names) > 20 else ""
        raise InputError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}{hints}; "
            f"the header has {header}{more}"
        )
    wanted = [*required, *(name for name in optional if name in names)]
    twice = [name for name in wanted if names.count(name) > 1]
    if twice:
        raise InputError(f"{path}: line 1: column {twice[0]!r} appears more than once")
    TRACE_ROWS.check(data.count(b"\n"), "the number of lines", str(path))
    table = _parse_csv(path, data, wanted)
    if table.num_rows == 0:
        raise InputError(f"{path}: the file has a header but no requests")
    return table, csv_row_lines(data, table.num_rows)


def _parse_csv(path: Path, data: bytes, wanted: list[str]) -> pa.Table:
    """pyarrow's CSV reader over `data`; a failure becomes an `InputError` with the line."""
    convert = pacsv.ConvertOptions(
        include_columns=wanted,
        column_types=dict.fromkeys(wanted, pa.string()),
        strings_can_be_null=True,
    )
    block_size = 1 << 20
    threads = True
    while True:
        invalid: list[Any] = []

        def on_invalid(row: Any, invalid: list[Any] = invalid) -> str:
            invalid.append(row)
            return "error"

        try:
            return pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(block_size=block_size, use_threads=threads),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                convert_options=convert,
            )
        except pa.ArrowException as exc:
            if invalid and invalid[0].number is None and threads:
                threads = False  # the single-threaded reader knows the row's number
                continue
            if invalid:
                row = invalid[0]
                where = f"line {row.number}" if row.number is not None else "a row"
                raise InputError(
                    f"{path}: {where}: has {row.actual_columns} field(s), the header has "
                    f"{row.expected_columns} (a ragged or truncated row: "
                    f"{shown(row.text, 60)}); every row needs one value per header column"
                ) from None
            if "straddl" in str(exc) and block_size <= len(data):
                block_size = min(len(data) + 1, 2**31 - 1)  # a line longer than a block
                if block_size > len(data):
                    continue
            raise InputError(f"{path}: cannot read the file as CSV: {arrow_reason(exc)}") from None


def csv_row_lines(data: bytes, num_rows: int) -> RowLocator:
    """The file line of each data row of a headed CSV, where pyarrow's rows and the file's
    lines differ: blank lines (skipped) and quoted fields spanning lines."""
    if data.count(b"\r") == data.count(b"\r\n"):  # no lone CR: count without splitting
        count = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        if count == num_rows + 1:
            return CSV_LINES
    lines = _NEWLINE.split(data)
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) == num_rows + 1:
        return CSV_LINES
    numbers: list[int] = []
    quotes = lines[0].count(b'"') if lines else 0
    for number, line in enumerate(lines[1:], start=2):
        if quotes % 2 == 0:  # a record starts here
            if line == b"":
                continue
            numbers.append(number)
        quotes += line.count(b'"')
    if len(numbers) != num_rows:
        return RowLocator(unit="data row", offset=1)
    return RowLocator(unit="line", numbers=np.asarray(numbers))


def parse_numbers(
    values: pa.Array | pa.ChunkedArray,
    column: str,
    path: Path,
    rows: RowLocator,
    *,
    integer: bool = False,
) -> np.ndarray:
    """Parse a string column as finite numbers, naming the first unparsable, empty or
    infinite cell.

    float64, or with `integer` int64 when every cell is an exact integer (so large ids keep
    every digit); range checks are the caller's (`columns.build_table`).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.nulls(0, pa.string())
    if integer and not values.null_count:
        digits = canonical.digit_cells(values)  # the usual form, without pyarrow.compute
        if digits is not None:
            return digits
        import pyarrow.compute as pc

        try:
            return arrays.to_numpy(pc.cast(pc.utf8_trim_whitespace(values), pa.int64()))
        except pa.ArrowException:
            pass  # "1.0", "1e3", or a bad cell: the float path says which
    texts = values.to_pylist()
    import pandas as pd  # only for cells that are not all integers (~0.2 s to import)

    try:
        numeric = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
        parsed = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError, OverflowError):
        parsed = np.array([_to_float(text) for text in texts], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(parsed))
    if len(bad):
        index = int(bad[0])
        finite = "a finite number" if not np.isnan(parsed[index]) else "a number"
        raise InputError(
            f"{path}: {rows.describe(index)}: column {column!r} is {shown(texts[index])}; "
            f"expected {finite}"
        )
    return parsed


def _to_float(text: str | None) -> float:
    if text is None:
        return float("nan")
    try:
        return float(text)
    except (ValueError, OverflowError):
        return float("nan")


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
        return values.take(arrays.array(keep))
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
            index = int(np.flatnonzero(~arrays.is_valid(column))[0])
            raise InputError(f"{path}: {rows.describe(index)}: {name!r} is missing or null")
