"""JSON trace formats: Mooncake JSONL, LLMServingSim ShareGPT JSONL, `vllm bench serve` JSON.

JSONL row numbers in messages are 1-based file lines; vllm-bench rows are request indices.
JSONL is parsed by `pyarrow.json` (the 12k-row Mooncake file loads in ~50 ms); only when
that fails does a line-by-line pass run, to name the bad line.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from infsim import arrays
from infsim.errors import InputError
from infsim.limits import TRACE_ROWS
from infsim.textio import load_json, read_text
from infsim.workload.columns import RowLocator, shown
from infsim.workload.formats import (
    LoadOptions,
    TraceFormat,
    arrow_reason,
    as_hash_ids_array,
    read_utf8,
    register_format,
    reject_or_drop,
    require_no_nulls,
)
from infsim.workload.trace import Trace

JSONL_LINES = RowLocator(unit="line", offset=1)


def _first_json_object(head: str) -> dict[str, Any] | None:
    line = head.lstrip().split("\n", 1)[0]
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class _HugeInt(str):
    """A JSON integer too long for `int()` (Python's digit limit): kept as its text."""

    def __repr__(self) -> str:
        return f"an integer of {len(self.lstrip('-')):,} digits"


def _parse_int(text: str) -> int | _HugeInt:
    return int(text) if len(text) <= 400 else _HugeInt(text)


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"the field {twice!r} appears more than once")
    return dict(pairs)


def _json_line(line: str) -> Any:
    return json.loads(line, parse_int=_parse_int, object_pairs_hook=_no_repeats)


_INT64_TEXT = "an integer that fits in 64 bits"


def _field_problem(value: Any, kind: pa.DataType) -> str | None:
    """Why `value` cannot be read as `kind` (float64, int64, list<int64>); None if it can.
    null is readable (a missing value is reported afterwards, with its line)."""
    if value is None:
        return None
    if pa.types.is_list(kind):
        if not isinstance(value, list):
            return "expected a list of integers"
        if any(_field_problem(item, kind.value_type) for item in value):
            return "expected a list of integers that each fit in 64 bits"
        return None
    floating = pa.types.is_floating(kind)
    if isinstance(value, _HugeInt):
        return "expected " + ("a finite number" if floating else _INT64_TEXT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "expected a number" if floating else f"expected {_INT64_TEXT}"
    if floating:
        try:
            finite = math.isfinite(float(value)) or math.isnan(value)
        except OverflowError:
            finite = False
        return None if finite else "expected a finite number"
    if isinstance(value, float) or not -(2**63) <= value < 2**63:
        return f"expected {_INT64_TEXT}"
    return None


def _locate_bad_json_line(text: str, fields: dict[str, pa.DataType]) -> str | None:
    """The first line pyarrow cannot read as one object with `fields` of their types."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = _json_line(line)
        except RecursionError:
            return f"line {number}: nested too deeply"
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            reason = reason if len(reason) <= 120 else reason[:100] + "…"
            return f"line {number}: not valid JSON ({reason})"
        if not isinstance(value, dict):
            return f"line {number}: expected a JSON object, got {type(value).__name__}"
        for name, kind in fields.items():
            problem = _field_problem(value.get(name), kind)
            if problem:
                return f"line {number}: field {name!r} is {shown(value.get(name))}; {problem}"
    return None


def _object_lines(text: str, num_rows: int) -> RowLocator:
    """The file line of each row (pyarrow skips blank lines)."""
    lines = text.split("\n")
    if lines and not lines[-1].strip():
        lines.pop()
    if len(lines) == num_rows and all(line.strip() for line in lines):
        return JSONL_LINES
    numbers = [number for number, line in enumerate(lines, start=1) if line.strip()]
    return RowLocator(unit="line", numbers=np.asarray(numbers))


_NOT_AN_OBJECT = re.compile(rb"(?m)^[ \t\r]*[^{ \t\r\n]")
"""A line whose first non-blank character does not open an object. Checked before pyarrow
sees the data: `pyarrow.json.read_json` (26.0) segfaults when the first value is `null`, and
reads a `null` line elsewhere as a row of nulls."""


def read_jsonl(path: Path, fields: dict[str, pa.DataType]) -> tuple[pa.Table, RowLocator]:
    """Read JSONL objects (one per line) with the given fields; others are ignored.

    Returns the table and the file line of each row. Every failure is an `InputError`
    naming the line where it can be found (a Python pass over the lines runs only then).
    """
    data = read_utf8(path)
    if not data.strip():
        raise InputError(f"{path}: the file is empty; expected one JSON object per line")
    bytes_ = np.frombuffer(data, np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(bytes_ == ord("\n")) + 1])
    starts = starts[starts < len(bytes_)]
    TRACE_ROWS.check(len(starts), "the number of lines", str(path))
    plain = bool(np.all(bytes_[starts] == ord("{")))  # every line opens an object at once
    if not plain and _NOT_AN_OBJECT.search(data):  # pyarrow 26 segfaults on a leading null
        text = data.decode("utf-8")
        where = _locate_bad_json_line(text, fields) or "a line does not start with '{'"
        raise InputError(f"{path}: {where}; expected one JSON object per line")
    schema = pa.schema(list(fields.items()))
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    block_size = 1 << 20
    while True:
        try:
            table = pajson.read_json(
                pa.BufferReader(data),
                read_options=pajson.ReadOptions(block_size=block_size),
                parse_options=options,
            )
            break
        except pa.ArrowException as exc:
            if "straddl" in str(exc) and block_size <= len(data) < 2**31 - 1:
                block_size = len(data) + 1  # a line longer than a block
                continue
            text = data.decode("utf-8")
            where = _locate_bad_json_line(text, fields)
            if where is None:
                where = f"cannot read the file as JSON lines: {arrow_reason(exc)}"
            raise InputError(f"{path}: {where}") from None
    if plain and len(starts) == table.num_rows:
        rows = JSONL_LINES  # no blank line, one object per line
    else:
        text = data.decode("utf-8")
        rows = _object_lines(text, table.num_rows)
    if rows.numbers is not None and len(rows.numbers) != table.num_rows:
        where = _locate_bad_json_line(text, fields) or "some line holds more than one object"
        raise InputError(f"{path}: {where}; expected one JSON object per line")
    if table.num_rows == 0:
        raise InputError(f"{path}: the file holds no requests")
    for name in fields:
        if table.column(name).null_count == table.num_rows:
            raise InputError(f"{path}: no line has the field {name!r}; expected {list(fields)}")
    require_no_nulls(table, list(fields), path, rows)
    return table, rows


def _numpy(table: pa.Table, name: str) -> np.ndarray:
    return arrays.to_numpy(table.column(name))


# -- Mooncake ----------------------------------------------------------------------------

MOONCAKE_FIELDS = {
    "timestamp": pa.float64(),
    "input_length": pa.int64(),
    "output_length": pa.int64(),
    "hash_ids": pa.list_(pa.int64()),
}


def _read_hashed_jsonl(
    path: Path,
    options: LoadOptions,
    fields: dict[str, pa.DataType],
    seconds_per_unit: float,
    default_block_tokens: int,
) -> Trace:
    """JSONL with (arrival time, prompt, output, hash_ids) in `fields` order."""
    time_col, prompt_col, output_col, hash_col = fields
    table, rows = read_jsonl(path, fields)
    columns = {
        "arrival_s": _numpy(table, time_col) * seconds_per_unit,
        "num_prompt_tokens": _numpy(table, prompt_col),
        "num_output_tokens": _numpy(table, output_col),
        "prefix_hash_ids": as_hash_ids_array(table.column(hash_col)),
    }
    block_size = options.hash_block_size_tokens or default_block_tokens
    return Trace.from_columns(
        columns, hash_block_size_tokens=block_size, source=str(path), rows=rows
    )


def read_mooncake(path: Path, options: LoadOptions) -> Trace:
    """Mooncake FAST'25: `timestamp` ms → arrival_s; `hash_ids` over 512-token blocks."""
    return _read_hashed_jsonl(path, options, MOONCAKE_FIELDS, 1e-3, 512)


register_format(
    TraceFormat(
        "mooncake",
        read_mooncake,
        lambda path, head: (
            {"timestamp", "input_length", "output_length"} <= set(_first_json_object(head) or ())
        ),
        "Mooncake JSONL: timestamp (ms), input_length, output_length, hash_ids (512-token)",
    )
)


# -- LLMServingSim ShareGPT workloads ----------------------------------------------------

LLMSERVINGSIM_FIELDS = {
    "arrival_time_ns": pa.int64(),
    "input_toks": pa.int64(),
    "output_toks": pa.int64(),
    "hash_ids": pa.list_(pa.int64()),
}


def read_llmservingsim(path: Path, options: LoadOptions) -> Trace:
    """LLMServingSim ShareGPT: `arrival_time_ns` → arrival_s; `hash_ids` over 16-token blocks."""
    return _read_hashed_jsonl(path, options, LLMSERVINGSIM_FIELDS, 1e-9, 16)


register_format(
    TraceFormat(
        "llmservingsim",
        read_llmservingsim,
        lambda path, head: (
            {"arrival_time_ns", "input_toks", "output_toks"} <= set(_first_json_object(head) or ())
        ),
        "LLMServingSim ShareGPT JSONL: arrival_time_ns, input_toks, output_toks, hash_ids (16)",
    )
)


# -- vllm bench serve --save-result --save-detailed --------------------------------------

VLLM_BENCH_KEYS = ("start_times", "input_lens", "output_lens")


def _load_bench_json(path: Path) -> dict[str, Any]:
    result = load_json(read_text(path, "trace file"), str(path))
    if not isinstance(result, dict):
        raise InputError(f"{path}: expected one JSON object (vllm bench serve --save-result)")
    missing = [key for key in VLLM_BENCH_KEYS if key not in result]
    if missing:
        raise InputError(
            f"{path}: no per-request {', '.join(missing)}: replaying a vllm bench result needs "
            "per-request start times and lengths, which only `vllm bench serve --save-result "
            "--save-detailed` on vLLM >= Jan 2026 (PR #32667, `start_times`) writes"
        )
    for key in VLLM_BENCH_KEYS:
        if not isinstance(result[key], list):
            raise InputError(
                f"{path}: {key!r} is {shown(result[key])}; expected a list, one entry per request"
            )
    lengths = {key: len(result[key]) for key in VLLM_BENCH_KEYS}
    if len(set(lengths.values())) != 1 or not lengths["start_times"]:
        raise InputError(f"{path}: per-request arrays are empty or differ in length {lengths}")
    TRACE_ROWS.check(lengths["start_times"], "the number of requests", str(path))
    return result


def _bench_numbers(result: dict[str, Any], key: str, path: Path) -> np.ndarray:
    """A per-request array of numbers; a null, string, list or boolean entry is an error."""
    values = result[key]
    for index, value in enumerate(values):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(value, int) and not -(2**63) <= value < 2**63:
            ok = False
        if not ok:
            raise InputError(
                f"{path}: request {index}: {key!r} is {shown(value)}; expected a number"
                + ("" if key == "start_times" else " of tokens (an integer)")
            )
    array = np.asarray(values)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = int(np.flatnonzero(~np.isfinite(array))[0])
        raise InputError(
            f"{path}: request {index}: {key!r} is {values[index]}; expected a finite number"
        )
    return array


def _bench_errors(result: dict[str, Any], path: Path, count: int) -> list[bool]:
    """Which requests failed: a non-empty `errors` entry (a string, or null for none)."""
    errors = result.get("errors")
    if errors is None:
        return [False] * count
    if not isinstance(errors, list) or len(errors) != count:
        raise InputError(
            f"{path}: 'errors' is {shown(errors)}; expected a list of {count} strings, one "
            "per request ('' or null when the request succeeded)"
        )
    for index, error in enumerate(errors):
        if error is not None and not isinstance(error, str):
            raise InputError(
                f"{path}: request {index}: 'errors' entry is {shown(error)}; expected a string "
                "('' or null when the request succeeded)"
            )
    return [bool(error) for error in errors]


def read_vllm_bench(path: Path, options: LoadOptions) -> Trace:
    """arrival = start_time − min(start_times), rows sorted by start time (stable).

    `start_times` are client perf_counter stamps taken when a request is sent; with
    --max-concurrency they follow completion of earlier requests, so the arrays need not be
    in start order. request_id is the index in the result arrays.
    """
    if options.hash_block_size_tokens is not None:
        raise InputError(
            f"{path}: format 'vllm-bench' has no prefix hash ids; hash_block_size_tokens "
            f"must be null (got {options.hash_block_size_tokens})"
        )
    result = _load_bench_json(path)
    start_s = _bench_numbers(result, "start_times", path).astype(np.float64)
    failed = np.array(_bench_errors(result, path, len(start_s)), dtype=bool)
    rows = RowLocator(unit="request", offset=0)
    columns = {
        "arrival_s": start_s - start_s.min(),
        "num_prompt_tokens": _bench_numbers(result, "input_lens", path),
        "num_output_tokens": _bench_numbers(result, "output_lens", path),
        "request_id": np.arange(len(start_s)),
    }
    columns, rows, notes = reject_or_drop(
        path, columns, failed, rows, what="the request failed (non-empty `errors` entry)",
        allowed=options.drop_failed, option="drop_failed=True (CLI: --drop-failed)",
    )  # fmt: skip
    order = np.argsort(columns["arrival_s"], kind="stable")
    if np.any(order != np.arange(len(order))):
        notes = (*notes, "rows sorted by start_times (the result arrays were not in start order)")
    columns = {name: np.asarray(values)[order] for name, values in columns.items()}
    return Trace.from_columns(columns, source=str(path), rows=rows.take(order), notes=notes)


register_format(
    TraceFormat(
        "vllm-bench",
        read_vllm_bench,
        lambda path, head: (
            path.suffix.lower() == ".json"
            and any(f'"{key}"' in head for key in ("backend", "input_lens", "request_throughput"))
        ),
        "vllm bench serve --save-result --save-detailed JSON (needs start_times)",
    )
)
