"""GuideLLM benchmark report JSON (FORMATS.md §1.5): `{"benchmarks": [...]}`, one entry
per strategy of a sweep; choose one with run_index when there are several.

Aggregates are `StatusDistributionSummary` objects; the `successful` part is used.
Units are in the names: `time_to_first_token_ms`, `inter_token_latency_ms` (ms),
`request_latency` (s). GuideLLM's `inter_token_latency_ms` is per request
(last − first token) / (output − 1), i.e. vLLM's TPOT, so it is compared as `tpot`;
GuideLLM's `time_per_output_token_ms` divides by all output tokens and is not compared,
and there is no pooled ITL. Output throughput = successful output tokens / duration.
Per-request samples (`requests.successful`) are replayed only when the report kept every
request (a `--metrics sample_size` report or the stripped test asset keeps a sample).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError, shown
from infsim.validation import fields
from infsim.validation.formats import BenchFormat, pick_run, read_json, register
from infsim.validation.measured import (
    THROUGHPUT_KEY,
    MeasuredRequests,
    MeasuredRun,
    stated_rate,
    stated_seconds,
)

METRICS = {  # ours: (GuideLLM metric, seconds per unit)
    "ttft": ("time_to_first_token_ms", 1e-3),
    "tpot": ("inter_token_latency_ms", 1e-3),
    "e2e": ("request_latency", 1.0),
}
ROW_HELP = (
    "a successful request sample carries prompt_tokens, output_tokens, start_time (or "
    "request_start_time), end_time (or request_end_time) and time_to_first_token_ms (or "
    "first_token_time)"
)


def _summary(metrics: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """metrics.<name>.successful ({} where absent)."""
    entry = fields.mapping(metrics.get(name), where, f"metrics.{name}", optional=True)
    return fields.mapping(entry.get("successful"), where, f"metrics.{name}.successful",
                          optional=True)  # fmt: skip


def _stats(benchmark: dict[str, Any], where: str) -> dict[str, float]:
    metrics = fields.mapping(benchmark.get("metrics"), where, "metrics", optional=True)
    out: dict[str, float] = {}
    for ours, (name, scale) in METRICS.items():
        summary = _summary(metrics, name, where)
        key = f"metrics.{name}.successful"
        pct = fields.mapping(summary.get("percentiles"), where, f"{key}.percentiles",
                             optional=True)  # fmt: skip
        p50 = ("percentiles.p50", pct["p50"]) if pct.get("p50") is not None else (
            "median", summary.get("median"))  # fmt: skip
        values = {
            "mean": ("mean", summary.get("mean")),
            "p50": p50,
            "p90": ("percentiles.p90", pct.get("p90")),
            "p99": ("percentiles.p99", pct.get("p99")),
        }
        for stat, (field, value) in values.items():
            seconds = stated_seconds(value, where, f"{key}.{field}", scale)
            if seconds is not None:
                out[f"{ours}_{stat}"] = seconds
    total = _summary(metrics, "output_token_count", where).get("total_sum")
    tokens = stated_rate(total, where, "metrics.output_token_count.successful.total_sum")
    duration = stated_seconds(benchmark.get("duration"), where, "duration")
    if tokens is not None and duration:
        out[THROUGHPUT_KEY] = tokens / duration
    return out


def _time(row: dict[str, Any], where: str, *keys: str, scale: float = 1.0) -> float:
    """The first of `keys` the row states, as a number (× scale); NaN when none is."""
    for key in keys:
        if row.get(key) is not None:
            return float(fields.number(row[key], where, key, lo=-fields.MAX_CLOCK_S / scale,
                                       hi=fields.MAX_CLOCK_S / scale,
                                       expected=fields.CLOCK)) * scale  # fmt: skip
    return np.nan


def _duration(value: float, where: str, name: str) -> float:
    if not np.isnan(value) and not 0.0 <= value <= fields.MAX_SECONDS:
        raise InputError(
            f"{where}: {name} is {value!r} s; expected a duration 0 to "
            f"{fields.MAX_SECONDS:.0e} s (timestamps out of order?)"
        )
    return value


def _requests(rows: list[tuple[str, dict[str, Any]]], num_ok: int) -> MeasuredRequests:
    n = len(rows)
    num_in, num_out = np.zeros(n, np.int64), np.zeros(n, np.int64)
    start, ttft, e2e = np.empty(n), np.empty(n), np.empty(n)
    for i, (where, row) in enumerate(rows):
        ok = i < num_ok
        inputs = fields.tokens(row.get("prompt_tokens"), where, "prompt_tokens", optional=not ok)
        outputs = fields.tokens(row.get("output_tokens"), where, "output_tokens", optional=not ok)
        num_in[i], num_out[i] = inputs or 0, outputs or 0
        start[i] = _time(row, where, "start_time", "request_start_time")
        end = _time(row, where, "end_time", "request_end_time")
        first = _time(row, where, "first_token_time")
        stated = _time(row, where, "time_to_first_token_ms", scale=1e-3)
        ttft[i] = _duration(
            stated if not np.isnan(stated) else first - start[i],
            where,
            "the TTFT (time_to_first_token_ms, or first_token_time − start_time)",
        )
        e2e[i] = _duration(end - start[i], where, "end_time − start_time")  # fmt: skip
        if ok and np.isnan([start[i], e2e[i], ttft[i]]).any():
            raise InputError(f"{where}: a start, end or first-token time is missing; {ROW_HELP}")
    return MeasuredRequests(
        num_input_tokens=num_in,
        num_output_tokens=num_out,
        ttft_s=ttft,
        e2e_s=e2e,
        failed=np.arange(n) >= num_ok,
        start_s=None if np.isnan(start).any() else start,
    )


def _describe(benchmark: Any) -> str:
    if not isinstance(benchmark, dict):
        return shown(benchmark)
    args = benchmark.get("args") or benchmark.get("config")
    strategy = args.get("strategy") if isinstance(args, dict) else None
    strategy = strategy if isinstance(strategy, dict) else {}
    return f"strategy {shown(strategy.get('type_'))} rate {shown(strategy.get('rate'))}"


def _samples(benchmark: dict[str, Any], where: str, kind: str) -> list[tuple[str, dict]]:
    samples = fields.mapping(benchmark.get("requests"), where, "requests", optional=True)
    rows = fields.items(samples.get(kind), where, f"requests.{kind}", optional=True) or []
    return [
        (f"{where}: requests.{kind}[{i}]", fields.mapping(row, where, f"requests.{kind}[{i}]"))
        for i, row in enumerate(rows)
    ]


def read_guidellm(path: Path, run_index: int | None) -> MeasuredRun:
    data = read_json(path)
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not benchmarks:
        raise InputError(f"{path}: no 'benchmarks' list; expected a GuideLLM report JSON")
    benchmarks = fields.items(benchmarks, str(path), "benchmarks")
    assert benchmarks is not None
    index = run_index if run_index is not None else 0
    benchmark = pick_run(benchmarks, run_index, path, _describe)
    where = f"{path}: benchmarks[{index}]"
    benchmark = fields.mapping(benchmark, str(path), f"benchmarks[{index}]")
    totals = benchmark.get("request_totals")
    totals_key = "request_totals"
    if not totals:
        scheduler = fields.mapping(benchmark.get("scheduler_metrics"), where,
                                   "scheduler_metrics", optional=True)  # fmt: skip
        totals, totals_key = scheduler.get("requests_made"), "scheduler_metrics.requests_made"
    totals = fields.mapping(totals, where, totals_key, optional=True)
    ok_rows = _samples(benchmark, where, "successful")
    bad_rows = [*_samples(benchmark, where, "errored"), *_samples(benchmark, where, "incomplete")]
    num_ok = fields.count(totals.get("successful"), where, f"{totals_key}.successful",
                          optional=True)  # fmt: skip
    bad = [fields.count(totals.get(k), where, f"{totals_key}.{k}", optional=True)
           for k in ("errored", "incomplete")]  # fmt: skip
    num_bad = None if bad == [None, None] else sum(b or 0 for b in bad)
    complete = num_ok is not None and len(ok_rows) == num_ok and len(bad_rows) == (num_bad or 0)
    blocker = (
        None
        if complete
        else (f"the report keeps {len(ok_rows)} of {num_ok} successful requests (a sample)")
    )
    worker = fields.mapping(benchmark.get("worker"), where, "worker", optional=True)
    return MeasuredRun(
        format="guidellm",
        source=str(path),
        model=fields.text(worker.get("backend_model"), where, "worker.backend_model"),
        requests=_requests([*ok_rows, *bad_rows], len(ok_rows)) if complete and ok_rows else None,
        stats=_stats(benchmark, where),
        duration_s=stated_seconds(benchmark.get("duration"), where, "duration"),
        num_completed=num_ok,
        num_failed=num_bad,
        notes=("tpot = GuideLLM inter_token_latency_ms; no pooled ITL in GuideLLM reports",),
        replay_blocker=blocker,
    )


def _sniff(path: Path, head: str) -> bool:
    return '"benchmarks"' in head and ('"generative_benchmark"' in head or "guidellm" in head)


register(BenchFormat("guidellm", read_guidellm, _sniff, "GuideLLM report JSON (benchmarks)"))
