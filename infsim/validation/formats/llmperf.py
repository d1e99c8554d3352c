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

from infsim.errors import InputError, shown
from infsim.validation import fields
from infsim.validation.formats import BenchFormat, read_json, register
from infsim.validation.measured import (
    THROUGHPUT_KEY,
    MeasuredRequests,
    MeasuredRun,
    stated_rate,
)

ROW_HELP = (
    "a successful LLMPerf response carries number_input_tokens, number_output_tokens, "
    "ttft_s and end_to_end_latency_s"
)


def _summary(path: Path) -> tuple[str, dict[str, Any]]:
    name = path.name.replace("individual_responses", "summary")
    sibling = path.with_name(name)
    if name == path.name or not sibling.is_file():
        return str(sibling), {}
    data = read_json(sibling)
    if not isinstance(data, dict):
        raise InputError(f"{sibling}: expected a JSON object (LLMPerf summary)")
    return str(sibling), data


def _requests(rows: list[Any], path: Path) -> MeasuredRequests:
    n = len(rows)
    num_in, num_out = np.zeros(n, np.int64), np.zeros(n, np.int64)
    ttft, e2e = np.full(n, np.nan), np.full(n, np.nan)
    failed = np.zeros(n, dtype=bool)
    for i, row in enumerate(rows):
        where = f"{path}: response {i}"
        row = fields.mapping(row, str(path), f"response {i}")
        message = fields.text(row.get("error_msg"), where, "error_msg")
        failed[i] = row.get("error_code") is not None or bool(message)
        optional = bool(failed[i])  # a failed response's values are not compared
        try:
            num_in[i] = (
                fields.tokens(
                    row.get("number_input_tokens"), where, "number_input_tokens", optional=optional
                )
                or 0
            )
            num_out[i] = (
                fields.tokens(
                    row.get("number_output_tokens"),
                    where,
                    "number_output_tokens",
                    optional=optional,
                )
                or 0
            )
            first = fields.seconds(row.get("ttft_s"), where, "ttft_s", optional=optional)
            latency = fields.seconds(row.get("end_to_end_latency_s"), where,
                                     "end_to_end_latency_s", optional=optional)  # fmt: skip
        except InputError as err:
            raise InputError(f"{err}; {ROW_HELP}") from None
        ttft[i] = np.nan if first is None else first
        e2e[i] = np.nan if latency is None else latency
    return MeasuredRequests(
        num_input_tokens=num_in,
        num_output_tokens=num_out,
        ttft_s=ttft,
        e2e_s=e2e,
        failed=failed,
    )


def read_llmperf(path: Path, run_index: int | None) -> MeasuredRun:
    if run_index not in (None, 0):
        raise InputError(f"{path}: an LLMPerf responses file holds one run; --run must be 0")
    rows = read_json(path)
    if not isinstance(rows, list) or not rows:
        raise InputError(
            f"{path}: expected a non-empty JSON list of LLMPerf responses, got {shown(rows)}"
        )
    requests = _requests(rows, path)
    sibling, summary = _summary(path)
    key = "results_mean_output_throughput_token_per_s"
    throughput = stated_rate(summary.get(key), sibling, key)
    return MeasuredRun(
        format="llmperf",
        source=str(path),
        model=fields.text(summary.get("model"), sibling, "model"),
        requests=requests,
        stats={} if throughput is None else {THROUGHPUT_KEY: throughput},
        num_completed=int((~requests.failed).sum()),
        num_failed=int(requests.failed.sum()),
        notes=("LLMPerf counts tokens with its own client-side tokenizer",),
        replay_blocker="LLMPerf records no per-request start times",
    )


def _sniff(path: Path, head: str) -> bool:
    return head.lstrip().startswith("[") and '"end_to_end_latency_s"' in head


register(BenchFormat("llmperf", read_llmperf, _sniff, "LLMPerf individual_responses JSON"))
