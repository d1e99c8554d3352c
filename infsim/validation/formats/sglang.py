"""SGLang `python -m sglang.bench_serving --output-file X.jsonl [--output-details]`
(FORMATS.md §1.2): JSONL, one object per benchmark run, appended; choose one with run_index.

Units: aggregate keys end in `_ms` (SGLang's e2e key is `*_e2e_latency_ms`); with
`--output-details` the line also carries `input_lens`, `output_lens`, `ttfts`, `itls`
(seconds) and `errors`. SGLang records no per-request start times and no per-request
latencies, so a run is never replayable and E2E/TPOT come from the stated aggregates.
The file may contain the bare `Infinity` token (`"request_rate": Infinity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError
from infsim.validation.formats import BenchFormat, pick_run, read_json_lines, register
from infsim.validation.measured import (
    MeasuredRequests,
    MeasuredRun,
    finite_or_none,
    ms_aggregates,
)

METRICS = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2e": "e2e_latency"}


def _describe(run: dict[str, Any]) -> str:
    return (
        f"request_rate {run.get('request_rate')}, max_concurrency "
        f"{run.get('max_concurrency')}, completed {run.get('completed')}"
    )


def _model(run: dict[str, Any]) -> str | None:
    info = run.get("server_info") if isinstance(run.get("server_info"), dict) else {}
    for value in (run.get("model_id"), run.get("model"), info.get("model_path")):
        if isinstance(value, str) and value:
            return value
    return None


def _requests(run: dict[str, Any], path: Path) -> MeasuredRequests | None:
    if not all(key in run for key in ("input_lens", "output_lens", "ttfts")):
        return None
    n = len(run["input_lens"])
    errors = run.get("errors") or [""] * n
    itls = run.get("itls")
    try:
        return MeasuredRequests(
            num_input_tokens=np.asarray(run["input_lens"], dtype=np.int64),
            num_output_tokens=np.asarray(run["output_lens"], dtype=np.int64),
            ttft_s=np.asarray(run["ttfts"], dtype=np.float64),
            e2e_s=np.full(n, np.nan),
            failed=np.asarray([bool(e) for e in errors], dtype=bool),
            itl_s=None if itls is None else [np.asarray(g, dtype=np.float64) for g in itls],
        )
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: per-request arrays are inconsistent: {exc}") from None


def read_sglang(path: Path, run_index: int | None) -> MeasuredRun:
    run = pick_run(read_json_lines(path), run_index, path, _describe)
    stats = ms_aggregates(run, METRICS)
    requests = _requests(run, path)
    note = (
        "per-request ttfts/itls/lengths present (--output-details)"
        if requests is not None
        else "aggregates only (run without --output-details)"
    )
    failed = None if requests is None else int(requests.failed.sum())
    return MeasuredRun(
        format="sglang",
        source=str(path),
        model=_model(run),
        requests=requests,
        stats=stats,
        duration_s=finite_or_none(run.get("duration")),
        num_completed=run.get("completed"),
        num_failed=failed,
        notes=(note,),
        replay_blocker="SGLang bench_serving records no per-request start times",
    )


def _sniff(path: Path, head: str) -> bool:
    return (head.lstrip().startswith("{") and "_e2e_latency_ms" in head) or (
        '"dataset_name"' in head and '"backend"' in head and '"model_id"' not in head
    )


register(
    BenchFormat(
        "sglang",
        read_sglang,
        _sniff,
        "SGLang bench_serving JSONL (one run per line; --output-details)",
    )
)
