"""CSV trace formats: Azure LLM 2023, BurstGPT, and infsim's own CSV/Parquet.

Row numbers in messages are 1-based file lines (the header is line 1).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from infsim.errors import InputError
from infsim.workload.columns import TRACE_SCHEMA, RowLocator
from infsim.workload.formats import (
    CSV_LINES,
    LoadOptions,
    TraceFormat,
    parse_numbers,
    read_csv_header,
    read_csv_strings,
    register_format,
    reject_or_drop,
)
from infsim.workload.trace import META_BLOCK_SIZE, META_NOTES, META_SOURCE, Trace

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
BURSTGPT_COLUMNS = ("Timestamp", "Request tokens", "Response tokens")
INFSIM_REQUIRED = ("arrival_s", "num_prompt_tokens", "num_output_tokens")
INFSIM_OPTIONAL = ("request_id", "prefix_hash_ids", "session_id", "priority")


def _has_header(path: Path, names: tuple[str, ...]) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    try:
        header = read_csv_header(path)
    except (InputError, OSError):
        return False
    return all(name in header for name in names)


def _no_hash_block_size(options: LoadOptions, fmt: str) -> None:
    if options.hash_block_size_tokens is not None:
        raise InputError(
            f"format {fmt!r} has no prefix hash ids; hash_block_size_tokens must be null"
        )


def _numbers(table: pa.Table, column: str, path: Path) -> np.ndarray:
    return parse_numbers(table.column(column), column, path, CSV_LINES)


# -- Azure LLM inference trace 2023 ------------------------------------------------------


def _azure_arrivals_s(stamps: pa.ChunkedArray, path: Path) -> np.ndarray:
    series = pd.Series(stamps.to_pylist(), dtype=object)
    parsed = pd.to_datetime(series, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        index = int(bad[0])
        raise InputError(
            f"{path}: {CSV_LINES.describe(index)}: column 'TIMESTAMP' is {series[index]!r}; "
            "expected a timestamp like '2023-11-16 18:17:03.9799600'"
        )
    ns = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return (ns - ns[0]) / 1e9


def read_azure(path: Path, options: LoadOptions) -> Trace:
    """Azure LLM 2023: arrival = seconds since the first row's TIMESTAMP."""
    _no_hash_block_size(options, "azure")
    table = read_csv_strings(path, AZURE_COLUMNS)
    columns = {
        "arrival_s": _azure_arrivals_s(table.column("TIMESTAMP"), path),
        "num_prompt_tokens": _numbers(table, "ContextTokens", path),
        "num_output_tokens": _numbers(table, "GeneratedTokens", path),
    }
    columns, rows, notes = reject_or_drop(
        path, columns, columns["num_output_tokens"] == 0, CSV_LINES,
        what="GeneratedTokens is 0", allowed=options.drop_zero_output,
        option="drop_zero_output=True (CLI: --drop-zero-output)",
    )  # fmt: skip
    return Trace.from_columns(columns, source=str(path), rows=rows, notes=notes)


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
    """Integer session ids as given, else codes in order of first appearance; None = null."""
    series = pd.Series(values.to_pylist(), dtype=object)
    numeric = pd.to_numeric(series, errors="coerce")
    if not numeric.isna().any() and (numeric == numeric.round()).all():
        return numeric.to_numpy(dtype=np.int64)
    codes, _ = pd.factorize(series, use_na_sentinel=True)
    return pd.array(np.where(codes < 0, None, codes), dtype="Int64")


def read_burstgpt(path: Path, options: LoadOptions) -> Trace:
    """BurstGPT: arrival = Timestamp − first Timestamp; 0 response tokens = failed request."""
    _no_hash_block_size(options, "burstgpt")
    table = read_csv_strings(path, BURSTGPT_COLUMNS, optional=("Session ID",))
    stamps_s = _numbers(table, "Timestamp", path)
    columns = {
        "arrival_s": stamps_s - stamps_s[0],
        "num_prompt_tokens": _numbers(table, "Request tokens", path),
        "num_output_tokens": _numbers(table, "Response tokens", path),
        "session_id": None,
    }
    if "Session ID" in table.column_names:
        columns["session_id"] = _session_ids(table.column("Session ID"))
    columns, rows, notes = reject_or_drop(
        path, columns, columns["num_output_tokens"] == 0, CSV_LINES,
        what="'Response tokens' is 0 (a failed request)", allowed=options.drop_zero_output,
        option="drop_zero_output=True (CLI: --drop-zero-output)",
    )  # fmt: skip
    return Trace.from_columns(columns, source=str(path), rows=rows, notes=notes)


register_format(
    TraceFormat(
        "burstgpt",
        read_burstgpt,
        lambda path, head: _has_header(path, BURSTGPT_COLUMNS),
        "BurstGPT CSV: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
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


def _parse_hash_ids(values: pa.ChunkedArray, path: Path) -> pa.Array:
    strings = pc.utf8_trim_whitespace(values.combine_chunks())
    strings = pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)
    try:
        return pc.split_pattern_regex(strings, r"\s+").cast(pa.list_(pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for index, text in enumerate(strings.to_pylist()):
            if text is not None and not all(part.lstrip("-").isdigit() for part in text.split()):
                raise InputError(
                    f"{path}: {CSV_LINES.describe(index)}: column 'prefix_hash_ids' is {text!r}; "
                    "expected space-separated integers"
                ) from None
        raise


def _nullable_ints(values: pa.ChunkedArray, column: str, path: Path) -> pa.Array:
    present = pc.is_valid(values).to_numpy(zero_copy_only=False)
    parsed = np.zeros(len(values), np.int64)
    if present.any():
        dense = values.filter(pa.array(present))
        locator = RowLocator(unit="line", numbers=CSV_LINES.take(np.flatnonzero(present)).numbers)
        parsed[present] = parse_numbers(dense, column, path, locator)
    return pa.array(parsed, mask=~present)


def _read_infsim_csv(path: Path, options: LoadOptions) -> Trace:
    table = read_csv_strings(path, INFSIM_REQUIRED, optional=INFSIM_OPTIONAL)
    columns: dict[str, object] = {}
    for name in table.column_names:
        values = table.column(name)
        if name == "prefix_hash_ids":
            columns[name] = _parse_hash_ids(values, path)
        elif name == "session_id":
            columns[name] = _nullable_ints(values, name, path)
        else:
            columns[name] = parse_numbers(values, name, path, CSV_LINES)
    block_size = _block_size(None, options, path)
    return Trace.from_columns(
        columns, hash_block_size_tokens=block_size, source=str(path), rows=CSV_LINES
    )


def _read_infsim_parquet(path: Path, options: LoadOptions) -> Trace:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    meta = table.schema.metadata or {}
    missing = [name for name in INFSIM_REQUIRED if name not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    stored = meta.get(META_BLOCK_SIZE)
    block_size = _block_size(None if stored is None else json.loads(stored), options, path)
    columns = {
        name: table.column(name).combine_chunks()
        for name in TRACE_SCHEMA.names
        if name in table.column_names
    }
    trace = Trace.from_columns(
        columns, hash_block_size_tokens=block_size, source=str(path), rows=RowLocator()
    )
    # Errors above name the file being read; the trace keeps its recorded origin.
    source = meta[META_SOURCE].decode() if META_SOURCE in meta else str(path)
    notes = tuple(json.loads(meta[META_NOTES])) if META_NOTES in meta else ()
    return replace(trace, source=source, notes=notes)


def read_infsim(path: Path, options: LoadOptions) -> Trace:
    """infsim's canonical table: Parquet (metadata kept) or CSV (hash ids space-separated)."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1":
        return _read_infsim_parquet(path, options)
    return _read_infsim_csv(path, options)


register_format(
    TraceFormat(
        "infsim",
        read_infsim,
        lambda path, head: path.suffix.lower() == ".parquet" or _has_header(path, INFSIM_REQUIRED),
        "infsim canonical table: .parquet, or .csv with the same columns",
    )
)
