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

from infsim.errors import InputError
from infsim.validation.formats import BenchFormat, pick_run, read_json, register
from infsim.validation.measured import (
    THROUGHPUT_KEY,
    MeasuredRequests,
    MeasuredRun,
    finite_or_none,
)

METRICS = {  # ours: (GuideLLM metric, seconds per unit)
    "ttft": ("time_to_first_token_ms", 1e-3),
    "tpot": ("inter_token_latency_ms", 1e-3),
    "e2e": ("request_latency", 1.0),
}


def _summary(benchmark: dict[str, Any], name: str) -> dict[str, Any]:
    entry = (benchmark.get("metrics") or {}).get(name) or {}
    return entry.get("successful") or {}


def _stats(benchmark: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for ours, (name, scale) in METRICS.items():
        summary = _summary(benchmark, name)
        pct = summary.get("percentiles") or {}
        values = {
            "mean": summary.get("mean"),
            "p50": pct.get("p50", summary.get("median")),
            "p90": pct.get("p90"),
            "p99": pct.get("p99"),
        }
        for stat, value in values.items():
            if finite_or_none(value) is not None:
                out[f"{ours}_{stat}"] = float(value) * scale
    tokens = finite_or_none(_summary(benchmark, "output_token_count").get("total_sum"))
    duration = finite_or_none(benchmark.get("duration"))
    if tokens is not None and duration:
        out[THROUGHPUT_KEY] = tokens / duration
    return out


def _get(record: dict[str, Any], *keys: str) -> float:
    for key in keys:
        value = finite_or_none(record.get(key))
        if value is not None:
            return value
    return np.nan


def _requests(rows: list[dict[str, Any]], failed: list[dict[str, Any]]) -> MeasuredRequests:
    records = [*rows, *failed]
    start = np.asarray([_get(r, "start_time", "request_start_time") for r in records])
    first = np.asarray([_get(r, "first_token_time") for r in records])
    end = np.asarray([_get(r, "end_time", "request_end_time") for r in records])
    ttft = np.asarray([_get(r, "time_to_first_token_ms") * 1e-3 for r in records])
    ttft = np.where(np.isnan(ttft), first - start, ttft)
    return MeasuredRequests(
        num_input_tokens=np.asarray([int(_get(r, "prompt_tokens") or 0) for r in records]),
        num_output_tokens=np.asarray([int(_get(r, "output_tokens") or 0) for r in records]),
        ttft_s=ttft,
        e2e_s=end - start,
        failed=np.arange(len(records)) >= len(rows),
        start_s=None if np.isnan(start).any() else start,
    )


def _describe(benchmark: dict[str, Any]) -> str:
    args = benchmark.get("args") or benchmark.get("config") or {}
    strategy = args.get("strategy") or {}
    return f"strategy {strategy.get('type_')} rate {strategy.get('rate')}"


def read_guidellm(path: Path, run_index: int | None) -> MeasuredRun:
    data = read_json(path)
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not benchmarks:
        raise InputError(f"{path}: no 'benchmarks' list; expected a GuideLLM report JSON")
    benchmark = pick_run(benchmarks, run_index, path, _describe)
    totals = (
        benchmark.get("request_totals")
        or (benchmark.get("scheduler_metrics") or {}).get("requests_made")
        or {}
    )
    samples = benchmark.get("requests") or {}
    ok_rows = samples.get("successful") or []
    bad_rows = [*(samples.get("errored") or []), *(samples.get("incomplete") or [])]
    num_ok = totals.get("successful")
    num_bad = (totals.get("errored") or 0) + (totals.get("incomplete") or 0)
    complete = num_ok is not None and len(ok_rows) == num_ok and len(bad_rows) == num_bad
    blocker = (
        None
        if complete
        else (f"the report keeps {len(ok_rows)} of {num_ok} successful requests (a sample)")
    )
    worker = benchmark.get("worker") or {}
    return MeasuredRun(
        format="guidellm",
        source=str(path),
        model=worker.get("backend_model"),
        requests=_requests(ok_rows, bad_rows) if complete and ok_rows else None,
        stats=_stats(benchmark),
        duration_s=finite_or_none(benchmark.get("duration")),
        num_completed=num_ok,
        num_failed=num_bad,
        notes=("tpot = GuideLLM inter_token_latency_ms; no pooled ITL in GuideLLM reports",),
        replay_blocker=blocker,
    )


def _sniff(path: Path, head: str) -> bool:
    return '"benchmarks"' in head and ('"generative_benchmark"' in head or "guidellm" in head)


register(BenchFormat("guidellm", read_guidellm, _sniff, "GuideLLM report JSON (benchmarks)"))
