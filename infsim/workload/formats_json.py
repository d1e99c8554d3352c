"""JSON trace formats: Mooncake JSONL, LLMServingSim ShareGPT JSONL, `vllm bench serve` JSON.

JSONL row numbers in messages are 1-based file lines; vllm-bench rows are request indices.
JSONL is parsed by `pyarrow.json` (the 12k-row Mooncake file loads in ~50 ms); only when
that fails does a line-by-line pass run, to name the bad line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from infsim.errors import InputError
from infsim.workload.columns import RowLocator
from infsim.workload.formats import (
    LoadOptions,
    TraceFormat,
    as_hash_ids_array,
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
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _locate_bad_json_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                return f"line {number} is blank"
            try:
                value = json.loads(line)
            except ValueError as exc:
                return f"line {number}: not valid JSON ({exc.msg})"
            if not isinstance(value, dict):
                return f"line {number}: expected a JSON object, got {type(value).__name__}"
    return "could not locate the bad line"


def read_jsonl(path: Path, fields: dict[str, pa.DataType]) -> pa.Table:
    """Read JSONL objects (one per line) with the given fields; others are ignored."""
    schema = pa.schema(list(fields.items()))
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pajson.read_json(path, parse_options=options)
    except pa.ArrowInvalid as exc:
        if "Empty JSON file" in str(exc):
            raise InputError(
                f"{path}: the file is empty; expected one JSON object per line"
            ) from None
        raise InputError(f"{path}: {_locate_bad_json_line(path)}") from None
    if table.num_rows == 0:
        raise InputError(f"{path}: the file holds no requests")
    for name in fields:
        if table.column(name).null_count == table.num_rows:
            raise InputError(f"{path}: no line has the field {name!r}; expected {list(fields)}")
    require_no_nulls(table, list(fields), path, JSONL_LINES)
    return table


def _numpy(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


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
    table = read_jsonl(path, fields)
    columns = {
        "arrival_s": _numpy(table, time_col) * seconds_per_unit,
        "num_prompt_tokens": _numpy(table, prompt_col),
        "num_output_tokens": _numpy(table, output_col),
        "prefix_hash_ids": as_hash_ids_array(table.column(hash_col)),
    }
    block_size = options.hash_block_size_tokens or default_block_tokens
    return Trace.from_columns(
        columns, hash_block_size_tokens=block_size, source=str(path), rows=JSONL_LINES
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
    try:
        with path.open(encoding="utf-8") as handle:
            result = json.load(handle)
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(result, dict):
        raise InputError(f"{path}: expected one JSON object (vllm bench serve --save-result)")
    missing = [key for key in VLLM_BENCH_KEYS if key not in result]
    if missing:
        raise InputError(
            f"{path}: no per-request {', '.join(missing)}: replaying a vllm bench result needs "
            "per-request start times and lengths, which only `vllm bench serve --save-result "
            "--save-detailed` on vLLM >= Jan 2026 (PR #32667, `start_times`) writes"
        )
    lengths = {key: len(result[key]) for key in VLLM_BENCH_KEYS}
    if len(set(lengths.values())) != 1 or not lengths["start_times"]:
        raise InputError(f"{path}: per-request arrays are empty or differ in length {lengths}")
    return result


def read_vllm_bench(path: Path, options: LoadOptions) -> Trace:
    """arrival = start_time − min(start_times), rows sorted by start time (stable).

    `start_times` are client perf_counter stamps taken when a request is sent; with
    --max-concurrency they follow completion of earlier requests, so the arrays need not be
    in start order. request_id is the index in the result arrays.
    """
    if options.hash_block_size_tokens is not None:
        raise InputError("format 'vllm-bench' has no prefix hash ids; hash_block_size_tokens")
    result = _load_bench_json(path)
    start_s = np.asarray(result["start_times"], dtype=np.float64)
    errors = result.get("errors") or [""] * len(start_s)
    rows = RowLocator(unit="request", offset=0)
    columns = {
        "arrival_s": start_s - start_s.min(),
        "num_prompt_tokens": np.asarray(result["input_lens"]),
        "num_output_tokens": np.asarray(result["output_lens"]),
        "request_id": np.arange(len(start_s)),
    }
    failed = np.array([bool(error) for error in errors])
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
