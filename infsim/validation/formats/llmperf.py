"""LLMPerf (ray-project/llmperf `token_benchmark_ray.py`) individual responses JSON
(FORMATS.md §1.6): a list of per-request objects in seconds.

`inter_token_latency_s` there is a per-request mean that includes the first token, so it
is not compared; TPOT is recomputed as (e2e − ttft) / (output − 1). LLMPerf keeps no
start times (never replayable) and no pooled ITL. A request with an `error_code` or a
non-empty `error_msg` is failed. The sibling `*_summary.json` (same prefix), when
present, gives the model name and the output throughput
(`results_mean_output_throughput_token_per_s`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError
from infsim.validation.formats import BenchFormat, read_json, register
from infsim.validation.measured import (
    THROUGHPUT_KEY,
    MeasuredRequests,
    MeasuredRun,
    finite_or_none,
)


def _number(row: dict[str, Any], key: str) -> float:
    value = finite_or_none(row.get(key))
    return np.nan if value is None else value


def _summary(path: Path) -> dict[str, Any]:
    name = path.name.replace("individual_responses", "summary")
    sibling = path.with_name(name)
    if name == path.name or not sibling.is_file():
        return {}
    data = read_json(sibling)
    return data if isinstance(data, dict) else {}


def read_llmperf(path: Path, run_index: int | None) -> MeasuredRun:
    if run_index not in (None, 0):
        raise InputError(f"{path}: an LLMPerf responses file holds one run; --run must be 0")
    rows = read_json(path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not rows:
        raise InputError(f"{path}: expected a non-empty JSON list of LLMPerf responses")
    failed = np.asarray([r.get("error_code") is not None or bool(r.get("error_msg")) for r in rows])
    requests = MeasuredRequests(
        num_input_tokens=np.asarray([int(_number(r, "number_input_tokens") or 0) for r in rows]),
        num_output_tokens=np.asarray([int(_number(r, "number_output_tokens") or 0) for r in rows]),
        ttft_s=np.asarray([_number(r, "ttft_s") for r in rows]),
        e2e_s=np.asarray([_number(r, "end_to_end_latency_s") for r in rows]),
        failed=failed,
    )
    summary = _summary(path)
    throughput = finite_or_none(summary.get("results_mean_output_throughput_token_per_s"))
    return MeasuredRun(
        format="llmperf",
        source=str(path),
        model=summary.get("model"),
        requests=requests,
        stats={} if throughput is None else {THROUGHPUT_KEY: throughput},
        num_completed=int((~failed).sum()),
        num_failed=int(failed.sum()),
        notes=("LLMPerf counts tokens with its own client-side tokenizer",),
        replay_blocker="LLMPerf records no per-request start times",
    )


def _sniff(path: Path, head: str) -> bool:
    return head.lstrip().startswith("[") and '"end_to_end_latency_s"' in head


register(BenchFormat("llmperf", read_llmperf, _sniff, "LLMPerf individual_responses JSON"))
