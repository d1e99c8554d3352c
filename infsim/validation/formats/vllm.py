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

from infsim.errors import InputError, shown
from infsim.textio import load_json, read_text
from infsim.validation import fields
from infsim.validation.formats import (
    BenchFormat,
    parse_json_object,
    pick_run,
    register,
    text_lines,
)
from infsim.validation.measured import (
    MeasuredRequests,
    MeasuredRun,
    client_concurrency,
    client_rate,
    ms_aggregates,
    stated_seconds,
)

METRICS = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2e": "e2el"}
DETAIL_KEYS = ("input_lens", "output_lens", "ttfts", "itls", "errors")
"""The per-request arrays `--save-detailed` adds (SGLang `--output-details` too); without
them the run has aggregates only (`latencies` and `start_times` alone are not rows); a
null counts as absent."""
REQUIRED_DETAIL = ("input_lens", "output_lens", "ttfts")


def _runs(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, run object) of each run: one JSON object, or one per line
    (`--append-result`)."""
    text = read_text(path, "benchmark result file")
    try:
        data = load_json(text, str(path))
    except InputError as whole:
        lines = text_lines(text)
        if len(lines) < 2 or not all(line.lstrip().startswith("{") for _, line in lines):
            raise whole from None
        return [(f"{path}: line {n}", parse_json_object(line, f"{path}: line {n}"))
                for n, line in lines]  # fmt: skip
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: expected a JSON object (vllm bench serve --save-result), got {shown(data)}"
        )
    return [(str(path), data)]


def _describe(entry: tuple[str, dict[str, Any]]) -> str:
    run = entry[1]
    return (
        f"date {shown(run.get('date'))}, request_rate {shown(run.get('request_rate'))}"
        f", max_concurrency {shown(run.get('max_concurrency'))}"
    )


def detailed_rows(
    run: dict[str, Any], where: str, *, timed: bool = True
) -> MeasuredRequests | None:
    """The per-request arrays (vLLM `--save-detailed`, SGLang `--output-details`), every
    item checked; None when the run has none of them. `timed`: also `latencies` and
    `start_times` (vLLM; SGLang records neither)."""
    present = [key for key in DETAIL_KEYS if run.get(key) is not None]
    if not present:
        return None
    missing = [key for key in REQUIRED_DETAIL if key not in present]
    if missing:
        raise InputError(
            f"{where}: per-request arrays {', '.join(present)} without "
            f"{', '.join(missing)}; a detailed result has input_lens, output_lens and ttfts "
            "(or no per-request arrays at all)"
        )
    inputs = fields.items(run["input_lens"], where, "input_lens")
    assert inputs is not None
    n = len(inputs)
    errors = fields.items(run.get("errors"), where, "errors", length=n, optional=True)
    failed = np.zeros(n, dtype=bool)
    for i, error in enumerate(errors or ()):
        failed[i] = bool(fields.text(error, where, f"errors[{i}]"))
    itls = fields.items(run.get("itls"), where, "itls", length=n, optional=True)
    latencies, start = (run.get("latencies"), run.get("start_times")) if timed else (None, None)
    e2e = np.full(n, np.nan)
    if latencies is not None:
        e2e = fields.number_array(latencies, where, "latencies", length=n)
    return MeasuredRequests(
        num_input_tokens=fields.token_array(inputs, where, "input_lens"),
        num_output_tokens=fields.token_array(run["output_lens"], where, "output_lens", length=n),
        ttft_s=fields.number_array(run["ttfts"], where, "ttfts", length=n),
        e2e_s=e2e,
        failed=failed,
        start_s=None if start is None else fields.clock_array(start, where, "start_times", n),
        itl_s=None
        if itls is None
        else [fields.number_array(gaps, where, f"itls[{i}]") for i, gaps in enumerate(itls)],
    )


def read_vllm(path: Path, run_index: int | None) -> MeasuredRun:
    where, run = pick_run(_runs(path), run_index, path, _describe)
    stats = ms_aggregates(run, METRICS, where)
    requests = detailed_rows(run, where)
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
    failed = fields.count(run.get("failed"), where, "failed", optional=True)
    if failed is None and requests is not None:
        failed = int(requests.failed.sum())
    model = fields.text(run.get("model_id"), where, "model_id")
    return MeasuredRun(
        format="vllm",
        source=str(path),
        model=model or fields.text(run.get("tokenizer_id"), where, "tokenizer_id"),
        requests=requests,
        stats=stats,
        duration_s=stated_seconds(run.get("duration"), where, "duration"),
        num_completed=fields.count(run.get("completed"), where, "completed", optional=True),
        num_failed=failed,
        notes=tuple(notes),
        max_concurrency=client_concurrency(run.get("max_concurrency"), where),
        request_rate_per_s=client_rate(run.get("request_rate"), where),
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
