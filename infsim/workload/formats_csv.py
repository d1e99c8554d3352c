"""CSV trace formats: Azure LLM 2023, BurstGPT, and infsim's own CSV/Parquet.

Row numbers in messages are 1-based file lines (the header is line 1).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infsim import arrays
from infsim.errors import InputError
from infsim.limits import HASH_IDS, TRACE_ROWS
from infsim.textio import load_json
from infsim.workload import canonical
from infsim.workload.columns import TRACE_SCHEMA, RowLocator, check_block_size, shown
from infsim.workload.formats import (
    LoadOptions,
    TraceFormat,
    arrow_reason,
    parse_numbers,
    read_csv_header,
    read_csv_strings,
    read_head,
    register_format,
    reject_or_drop,
)
from infsim.workload.trace import META_BLOCK_SIZE, META_NOTES, META_SOURCE, Trace

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
BURSTGPT_COLUMNS = ("Timestamp", "Request tokens", "Response tokens")
VIDUR_COLUMNS = ("arrived_at", "num_prefill_tokens", "num_decode_tokens")
VIDUR_LENGTHS = ("num_prefill_tokens", "num_decode_tokens")
INFSIM_REQUIRED = ("arrival_s", "num_prompt_tokens", "num_output_tokens")
INFSIM_OPTIONAL = ("request_id", "prefix_hash_ids", "session_id", "priority")


def _has_header(path: Path, names: tuple[str, ...]) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    try:
        header = read_csv_header(path)
    except InputError:
        return False
    return all(name in header for name in names)


def _no_hash_block_size(options: LoadOptions, fmt: str, path: Path) -> None:
    if options.hash_block_size_tokens is not None:
        raise InputError(
            f"{path}: format {fmt!r} has no prefix hash ids; hash_block_size_tokens must be "
            f"null (got {options.hash_block_size_tokens})"
        )


def _numbers(
    table: pa.Table, column: str, path: Path, rows: RowLocator, *, integer: bool = True
) -> np.ndarray:
    """A CSV column as numbers: exact int64 when every cell is an integer (token counts)."""
    return parse_numbers(table.column(column), column, path, rows, integer=integer)


def _trace(
    path: Path, columns: dict, rows: RowLocator, options: LoadOptions, zero_output: str
) -> Trace:
    """The trace of a CSV's `columns`; a row with 0 output tokens (a failed request, said
    as `zero_output`) is an error unless the caller allowed dropping them."""
    columns, rows, notes = reject_or_drop(
        path, columns, columns["num_output_tokens"] == 0, rows,
        what=zero_output, allowed=options.drop_zero_output,
        option="drop_zero_output=True (CLI: --drop-zero-output)",
    )  # fmt: skip
    return Trace.from_columns(columns, source=str(path), rows=rows, notes=notes)


# -- Azure LLM inference trace 2023 ------------------------------------------------------

_UTC_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"
"""A timestamp whose time of day ends in a UTC offset: Z, +01, +0100 or +01:00."""


_PLAIN_STAMP = r"^(?:19|20|21)\d\d-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d{1,9})?$"
"""A timestamp as the Azure traces write it ('2023-11-16 18:17:03.9799600'), years 1900 to
2199, no UTC offset: Arrow parses these to the same nanoseconds as pandas."""


def _plain_stamps_ns(stamps: pa.ChunkedArray) -> np.ndarray | None:
    """Nanoseconds since the epoch of a column of `_PLAIN_STAMP` timestamps, parsed by
    Arrow (without importing pandas); None if any cell is not one, or not a valid date and
    time (Arrow refuses Feb 30 or 24:00 as pandas does), for pandas to parse or refuse."""
    if stamps.null_count or not len(stamps):
        return None
    ns = canonical.plain_stamps_ns(stamps)  # the usual form, without pyarrow.compute
    if ns is not None:
        return ns
    import pyarrow.compute as pc

    if not pc.all(pc.match_substring_regex(stamps, _PLAIN_STAMP)).as_py():
        return None
    try:
        parsed = pc.cast(stamps, pa.timestamp("ns"))
    except pa.ArrowException:
        return None
    return arrays.to_numpy(parsed.cast(pa.int64()))


def _azure_arrivals_s(stamps: pa.ChunkedArray, path: Path, rows: RowLocator) -> np.ndarray:
    ns = _plain_stamps_ns(stamps)
    if ns is not None:
        return (ns - ns[0]) / 1e9
    import pandas as pd  # other timestamp forms (~0.2 s to import)
    import pyarrow.compute as pc

    series = pd.Series(stamps.to_pylist(), dtype=object)
    offsets = pc.match_substring_regex(stamps, _UTC_OFFSET)
    with_offset = arrays.to_numpy(pc.fill_null(offsets, arrays.scalar(False, pa.bool_())))
    if with_offset.any() and not with_offset.all():
        index = int(np.flatnonzero(with_offset != with_offset[0])[0])
        has, lacks = ("has", "lacks") if with_offset[index] else ("lacks", "has")
        raise InputError(
            f"{path}: {rows.describe(index)}: column 'TIMESTAMP' is {shown(series[index])}, "
            f"which {has} a UTC offset, while {rows.describe(0)} ({shown(series[0])}) {lacks} "
            "one; give every timestamp an offset (e.g. +00:00) or none"
        )
    try:
        parsed = pd.to_datetime(
            series, format="ISO8601", errors="coerce", utc=bool(with_offset.all())
        )
        if parsed.dt.tz is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if not len(bad):
            ns = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    except (ValueError, TypeError, OverflowError):  # pandas refusing the column as a whole
        bad = np.flatnonzero([_unreadable_stamp(text) for text in series])
        bad = bad if len(bad) else np.array([0])
    if len(bad):
        index = int(bad[0])
        raise InputError(
            f"{path}: {rows.describe(index)}: column 'TIMESTAMP' is {shown(series[index])}; "
            "expected a timestamp like '2023-11-16 18:17:03.9799600' (years 1678 to 2261)"
        )
    return (ns - ns[0]) / 1e9


def _unreadable_stamp(text: object) -> bool:
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
        stamp.as_unit("ns")
    except (ValueError, TypeError, OverflowError):
        return True
    return pd.isna(stamp)


def read_azure(path: Path, options: LoadOptions) -> Trace:
    """Azure LLM 2023: arrival = seconds since the first row's TIMESTAMP."""
    _no_hash_block_size(options, "azure", path)
    table, rows = read_csv_strings(path, AZURE_COLUMNS)
    columns = {
        "arrival_s": _azure_arrivals_s(table.column("TIMESTAMP"), path, rows),
        "num_prompt_tokens": _numbers(table, "ContextTokens", path, rows),
        "num_output_tokens": _numbers(table, "GeneratedTokens", path, rows),
    }
    return _trace(path, columns, rows, options, "GeneratedTokens is 0")


register_format(
    TraceFormat(
        "azure",
        read_azure,
        lambda path, head: _has_header(path, AZURE_COLUMNS),
        "Azure LLM inference 2023 CSV: TIMESTAMP,ContextTokens,GeneratedTokens",
    )
)


# -- BurstGPT ----------------------------------------------------------------------------


def _session_ids(values: pa.ChunkedArray) -> np.ndarray | None:
    """Integer session ids as given, else codes in order of first appearance; None = null.

    Numbers are kept only when exact in float64 (|id| < 2^53); other ids are numbered."""
    import pandas as pd  # (~0.2 s to import)

    series = pd.Series(values.to_pylist(), dtype=object)
    try:
        numeric = pd.to_numeric(series, errors="coerce")
    except (ValueError, TypeError, OverflowError):
        numeric = pd.Series(np.nan, index=series.index)
    exact = numeric.notna().all() and (numeric.abs() < 2**53).all()
    if exact and (numeric == numeric.round()).all():
        return numeric.to_numpy(dtype=np.int64)
    codes, _ = pd.factorize(series, use_na_sentinel=True)
    return pd.array(np.where(codes < 0, None, codes), dtype="Int64")


def read_burstgpt(path: Path, options: LoadOptions) -> Trace:
    """BurstGPT: arrival = Timestamp − first Timestamp; 0 response tokens = failed request."""
    _no_hash_block_size(options, "burstgpt", path)
    table, rows = read_csv_strings(path, BURSTGPT_COLUMNS, optional=("Session ID",))
    stamps_s = _numbers(table, "Timestamp", path, rows, integer=False)
    columns = {
        "arrival_s": stamps_s - stamps_s[0],
        "num_prompt_tokens": _numbers(table, "Request tokens", path, rows),
        "num_output_tokens": _numbers(table, "Response tokens", path, rows),
        "session_id": None,
    }
    if "Session ID" in table.column_names:
        columns["session_id"] = _session_ids(table.column("Session ID"))
    return _trace(path, columns, rows, options, "'Response tokens' is 0 (a failed request)")


register_format(
    TraceFormat(
        "burstgpt",
        read_burstgpt,
        lambda path, head: _has_header(path, BURSTGPT_COLUMNS),
        "BurstGPT CSV: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
    )
)


def read_vidur(path: Path, options: LoadOptions) -> Trace:
    """Vidur's processed traces (`data/processed_traces/*.csv`): arrival_s = arrived_at
    (seconds since the first request, as Vidur's trace request generator reads it), prompt
    = num_prefill_tokens, output = num_decode_tokens. A file of lengths only (Vidur's
    arXiv summarization trace) has no arrivals to replay: refused with what to do."""
    _no_hash_block_size(options, "vidur", path)
    if not _has_header(path, ("arrived_at",)):
        raise InputError(
            f"{path}: a Vidur lengths-only trace (no 'arrived_at' column): there are no "
            "arrival times to replay; add an arrived_at column (seconds) or use a synthetic "
            "workload with its lengths"
        )
    table, rows = read_csv_strings(path, VIDUR_COLUMNS)
    columns = {
        "arrival_s": _numbers(table, "arrived_at", path, rows, integer=False),
        "num_prompt_tokens": _numbers(table, "num_prefill_tokens", path, rows),
        "num_output_tokens": _numbers(table, "num_decode_tokens", path, rows),
    }
    return _trace(path, columns, rows, options, "num_decode_tokens is 0")


register_format(
    TraceFormat(
        "vidur",
        read_vidur,
        lambda path, head: _has_header(path, VIDUR_LENGTHS),
        "Vidur processed trace CSV: arrived_at,num_prefill_tokens,num_decode_tokens",
    )
)


MAPPED_REQUIRED = ("arrival_s", "num_prompt_tokens", "num_output_tokens")
MAPPED_OPTIONAL = ("session_id",)
TIME_UNITS_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def read_mapped_csv(path: Path, options: LoadOptions) -> Trace:
    """Any headed CSV, through a column mapping (`columns`: infsim column → file column):
    arrival_s = (arrival − first arrival) × the time unit; prompt and output tokens as
    integers; session_id optional. 0 output tokens is an error unless drop_zero_output."""
    _no_hash_block_size(options, "csv", path)
    mapping = dict(options.columns)
    missing = [name for name in MAPPED_REQUIRED if name not in mapping]
    if missing:
        raise InputError(
            f"{path}: format csv needs a column mapping for {', '.join(missing)} (scenario: "
            "workload.trace.columns; CLI: --columns arrival_s=COL,num_prompt_tokens=COL,"
            "num_output_tokens=COL)"
        )
    optional = [mapping[name] for name in MAPPED_OPTIONAL if name in mapping]
    table, rows = read_csv_strings(path, [mapping[n] for n in MAPPED_REQUIRED], optional)
    stamps = _numbers(table, mapping["arrival_s"], path, rows, integer=False)
    columns = {
        "arrival_s": (stamps - stamps[0]) * TIME_UNITS_S[options.time_unit],
        "num_prompt_tokens": _numbers(table, mapping["num_prompt_tokens"], path, rows),
        "num_output_tokens": _numbers(table, mapping["num_output_tokens"], path, rows),
    }
    if "session_id" in mapping:
        columns["session_id"] = _session_ids(table.column(mapping["session_id"]))
    return _trace(path, columns, rows, options, f"{mapping['num_output_tokens']!r} is 0")


register_format(
    TraceFormat(
        "csv",
        read_mapped_csv,
        lambda path, head: False,  # needs a mapping: never guessed
        "any headed CSV through a column mapping (columns: arrival_s, num_prompt_tokens, "
        "num_output_tokens, optional session_id; time_unit)",
    )
)


# -- infsim canonical CSV and Parquet ----------------------------------------------------


def _block_size(stored: int | None, options: LoadOptions, path: Path) -> int | None:
    given = options.hash_block_size_tokens
    if stored is not None and given is not None and stored != given:
        raise InputError(
            f"{path}: the file says hash_block_size_tokens = {stored}, the caller gave {given}"
        )
    return stored if stored is not None else given


_HASH_ID = re.compile(r"-?\d{1,19}")


def _parse_hash_ids(values: pa.ChunkedArray, path: Path, rows: RowLocator) -> pa.Array:
    import pyarrow.compute as pc

    strings = pc.utf8_trim_whitespace(values.combine_chunks())
    empty = pc.equal(strings, arrays.scalar("", pa.string()))
    strings = pc.if_else(empty, arrays.scalar(None, pa.string()), strings)
    parts = pc.split_pattern_regex(strings, r"\s+")
    HASH_IDS.check(_count_values(parts), "the number of prefix hash ids", str(path))
    try:
        return parts.cast(pa.list_(pa.int64()))
    except pa.ArrowException:
        pass
    for index, text in enumerate(strings.to_pylist()):
        for part in (text or "").split():
            if not _HASH_ID.fullmatch(part) or not -(2**63) <= int(part) < 2**63:
                raise InputError(
                    f"{path}: {rows.describe(index)}: column 'prefix_hash_ids' is "
                    f"{shown(text)} ({shown(part, 40)} is not an integer that fits in 64 bits); "
                    "expected space-separated integers"
                )
    raise InputError(f"{path}: column 'prefix_hash_ids': expected space-separated integers")


def _count_values(lists: pa.Array) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.list_value_length(lists)).as_py() or 0)


def _nullable_ints(values: pa.ChunkedArray, column: str, path: Path, rows: RowLocator) -> pa.Array:
    """Numbers or nulls (empty fields); `columns.build_table` checks they are integers."""
    present = arrays.is_valid(values)
    if not present.any():
        return pa.nulls(len(values), pa.int64())
    dense = values.filter(arrays.array(present))
    numbers = parse_numbers(dense, column, path, rows.take(np.flatnonzero(present)), integer=True)
    full = np.zeros(len(values), numbers.dtype)
    full[present] = numbers
    return arrays.array(full, mask=~present)


_INTEGER_COLUMNS = ("num_prompt_tokens", "num_output_tokens", "request_id", "priority")


def _read_infsim_csv(path: Path, options: LoadOptions) -> Trace:
    table, rows = read_csv_strings(path, INFSIM_REQUIRED, optional=INFSIM_OPTIONAL)
    columns: dict[str, object] = {}
    for name in table.column_names:
        values = table.column(name)
        if name == "prefix_hash_ids":
            columns[name] = _parse_hash_ids(values, path, rows)
        elif name == "session_id":
            columns[name] = _nullable_ints(values, name, path, rows)
        else:
            columns[name] = parse_numbers(
                values, name, path, rows, integer=name in _INTEGER_COLUMNS
            )
    block_size = _block_size(None, options, path)
    return Trace.from_columns(
        columns, hash_block_size_tokens=block_size, source=str(path), rows=rows
    )


# Arrow types each canonical column may have in a Parquet file (checked before reading).
_NUMERIC = ("arrival_s", "num_prompt_tokens", "num_output_tokens", "request_id", "priority")


def _check_parquet_types(schema: pa.Schema, path: Path) -> None:
    names = schema.names
    twice = sorted({name for name in names if names.count(name) > 1 and name in TRACE_SCHEMA.names})
    if twice:
        raise InputError(f"{path}: column {twice[0]!r} appears more than once")
    for name in TRACE_SCHEMA.names:
        if name not in names:
            continue
        kind = schema.field(name).type
        if name in _NUMERIC:
            ok = pa.types.is_integer(kind) or pa.types.is_floating(kind)
            expected = "numbers (integers or floats)"
        elif name == "session_id":
            ok = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
            expected = "integers or nulls"
        else:
            ok = pa.types.is_null(kind) or (
                (pa.types.is_list(kind) or pa.types.is_large_list(kind))
                and (pa.types.is_integer(kind.value_type) or pa.types.is_null(kind.value_type))
            )
            expected = "lists of integers (list<int64>) or nulls"
        if not ok:
            raise InputError(f"{path}: column {name!r} has type {kind}; expected {expected}")


def _parquet_hash_id_count(meta: pq.FileMetaData, schema: pa.Schema) -> int:
    """Leaf values of `prefix_hash_ids` over all row groups, from the footer."""
    if "prefix_hash_ids" not in schema.names:
        return 0
    total = 0
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for column in range(row_group.num_columns):
            chunk = row_group.column(column)
            if chunk.path_in_schema.split(".")[0] == "prefix_hash_ids":
                total += chunk.num_values
    return total


def _meta_text(meta: dict[bytes, bytes], key: bytes, path: Path) -> str | None:
    if key not in meta:
        return None
    try:
        return meta[key].decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{path}: the file's metadata {key.decode()!r} is not UTF-8 text"
        ) from None


def _meta_json(meta: dict[bytes, bytes], key: bytes, path: Path, expected: str) -> object:
    text = _meta_text(meta, key, path)
    if text is None:
        return None
    try:
        return load_json(text, f"{path}: the file's metadata {key.decode()!r}")
    except InputError as err:
        raise InputError(f"{err}; expected {expected}") from None


def _parquet_metadata(
    meta: dict[bytes, bytes], path: Path
) -> tuple[int | None, str | None, tuple[str, ...]]:
    """(hash block size, source, notes) from the schema metadata, each validated."""
    block = _meta_json(meta, META_BLOCK_SIZE, path, "a JSON integer >= 1 or null")
    where = f"{path}: the file's metadata {META_BLOCK_SIZE.decode()!r}"
    block = check_block_size(block, where)
    source = _meta_text(meta, META_SOURCE, path)
    notes = _meta_json(meta, META_NOTES, path, "a JSON list of strings")
    if notes is None:
        notes = []
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise InputError(
            f"{path}: the file's metadata {META_NOTES.decode()!r} is {shown(notes)}; expected "
            "a JSON list of strings"
        )
    return block, source, tuple(notes)


def _read_infsim_parquet(path: Path, options: LoadOptions) -> Trace:
    try:
        with pq.ParquetFile(path) as handle:
            schema, meta = handle.schema_arrow, handle.metadata
            missing = [name for name in INFSIM_REQUIRED if name not in schema.names]
            if missing:
                raise InputError(
                    f"{path}: missing column(s) {', '.join(missing)}; the file has "
                    f"{shown(', '.join(schema.names), 200)}"
                )
            _check_parquet_types(schema, path)
            TRACE_ROWS.check(meta.num_rows, "the number of rows", str(path))
            HASH_IDS.check(
                _parquet_hash_id_count(meta, schema), "the number of prefix hash ids", str(path)
            )
            stored, source, notes = _parquet_metadata(schema.metadata or {}, path)
            wanted = [name for name in TRACE_SCHEMA.names if name in schema.names]
            table = handle.read(columns=wanted)
    except (pa.ArrowException, OSError, ValueError, IndexError, KeyError) as exc:
        # a damaged footer surfaces as Arrow errors, or as undecodable names and bad indices
        raise InputError(f"{path}: not a readable Parquet file ({arrow_reason(exc)})") from None
    block_size = _block_size(stored, options, path)
    rows = RowLocator()
    columns = {name: table.column(name) for name in wanted}
    trace = Trace.from_columns(
        columns, hash_block_size_tokens=block_size, source=str(path), rows=rows
    )
    # Errors above name the file being read; the trace keeps its recorded origin.
    return replace(trace, source=source if source is not None else str(path), notes=notes)


def read_infsim(path: Path, options: LoadOptions) -> Trace:
    """infsim's canonical table: Parquet (metadata kept) or CSV (hash ids space-separated)."""
    magic = read_head(path, 4)
    if magic == b"PAR1":
        return _read_infsim_parquet(path, options)
    if path.suffix.lower() == ".parquet":
        raise InputError(
            f"{path}: not a Parquet file (it does not start with the bytes PAR1); a CSV "
            "trace needs the extension .csv"
        )
    return _read_infsim_csv(path, options)


register_format(
    TraceFormat(
        "infsim",
        read_infsim,
        lambda path, head: path.suffix.lower() == ".parquet" or _has_header(path, INFSIM_REQUIRED),
        "infsim canonical table: .parquet, or .csv with the same columns",
    )
)
