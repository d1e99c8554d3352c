"""vLLM `vllm bench serve --save-result [--save-detailed]` JSON and legacy
`benchmarks/benchmark_serving.py` results (FORMATS.md §1.1).

Units: per-request arrays are seconds (`start_times`, `ttfts`, `itls`, `latencies`),
aggregate keys end in `_ms`. The legacy script wrote the goodput key with a typo
(`"request_goodput:"`) and `best_of`; both spellings are accepted (goodput is not compared).
`--append-result` files hold one JSON object per line: choose one with `run_index`.

Replay needs `start_times`, which only `--save-detailed` on vLLM ≥ Jan 2026 (PR #32667)
writes; without them the file is compared on its aggregates and per-request rows only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError
from infsim.validation.formats import BenchFormat, pick_run, read_json, read_json_lines, register
from infsim.validation.measured import (
    MeasuredRequests,
    MeasuredRun,
    client_concurrency,
    client_rate,
    finite_or_none,
    ms_aggregates,
)

METRICS = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2e": "e2el"}


def _runs(path: Path) -> list[dict[str, Any]]:
    try:
        data = read_json(path)
    except InputError:
        return read_json_lines(path)  # --append-result: one object per line
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object (vllm bench serve --save-result)")
    return [data]


def _describe(run: dict[str, Any]) -> str:
    return (
        f"date {run.get('date')}, request_rate {run.get('request_rate')}, "
        f"max_concurrency {run.get('max_concurrency')}"
    )


def _requests(run: dict[str, Any], path: Path) -> MeasuredRequests | None:
    if not all(key in run for key in ("input_lens", "output_lens", "ttfts")):
        return None
    n = len(run["input_lens"])
    errors = run.get("errors") or [""] * n
    latencies = run.get("latencies")
    itls = run.get("itls")
    start = run.get("start_times")
    try:
        return MeasuredRequests(
            num_input_tokens=np.asarray(run["input_lens"], dtype=np.int64),
            num_output_tokens=np.asarray(run["output_lens"], dtype=np.int64),
            ttft_s=np.asarray(run["ttfts"], dtype=np.float64),
            e2e_s=np.asarray(latencies if latencies is not None else [np.nan] * n, np.float64),
            failed=np.asarray([bool(e) for e in errors], dtype=bool),
            start_s=None if start is None else np.asarray(start, dtype=np.float64),
            itl_s=None if itls is None else [np.asarray(g, dtype=np.float64) for g in itls],
        )
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: per-request arrays are inconsistent: {exc}") from None


def read_vllm(path: Path, run_index: int | None) -> MeasuredRun:
    run = pick_run(_runs(path), run_index, path, _describe)
    stats = ms_aggregates(run, METRICS)
    requests = _requests(run, path)
    notes: list[str] = []
    if "request_goodput:" in run:
        notes.append("legacy benchmark_serving.py result (key 'request_goodput:')")
    if requests is None:
        notes.append(
            "no per-request arrays (the run was saved without --save-detailed): "
            "compared on the aggregates the file states"
        )
    elif requests.start_s is None:
        notes.append(
            "no per-request start_times (written by `vllm bench serve "
            "--save-detailed` since vLLM PR #32667, Jan 2026)"
        )
    failed = run.get("failed")
    if failed is None and requests is not None:
        failed = int(requests.failed.sum())
    return MeasuredRun(
        format="vllm",
        source=str(path),
        model=run.get("model_id") or run.get("tokenizer_id"),
        requests=requests,
        stats=stats,
        duration_s=finite_or_none(run.get("duration")),
        num_completed=run.get("completed"),
        num_failed=failed,
        notes=tuple(notes),
        max_concurrency=client_concurrency(run.get("max_concurrency"), path),
        request_rate_per_s=client_rate(run.get("request_rate")),
    )


def _sniff(path: Path, head: str) -> bool:
    first = head.lstrip()[:1]
    return first == "{" and '"model_id"' in head and '"e2e_latency_ms"' not in head


register(
    BenchFormat(
        "vllm",
        read_vllm,
        _sniff,
        "vllm bench serve --save-result [--save-detailed] JSON (also legacy benchmark_serving.py)",
    )
)

__all__ = ["read_vllm"]
