"""`validate(bench, scenario)`: replay a live benchmark through a scenario's deployment and
compare predicted with measured latency and throughput.

    benchmark file ─ formats.load_measured ─▶ MeasuredRun
         │ replayable (per-request start times)        │ not replayable
         ▼                                             ▼
    replay.successful_rows → replay_trace       the scenario's own workload, which must not
    (the benchmark's requests)                  hold more requests than were recorded
         └───────────── api.run_resolved(scenario deployment) ─────────────┘
                                   ▼
            compare.measured_stats vs compare.predicted_stats → ValidationResult

Files without per-request start times (vLLM without --save-detailed or before PR #32667,
SGLang, LLMPerf, sampled GuideLLM reports, AIPerf aggregates) cannot be replayed: the
prediction then comes from the scenario's workload, which the user must make match the
benchmark, and `run.replayed` is false with a note saying so.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from infsim.api import run_resolved
from infsim.errors import InputError
from infsim.scenario.load import load_scenario
from infsim.scenario.resolve import ResolvedScenario, resolve
from infsim.scenario.schema import Scenario
from infsim.validation.compare import ValidationResult, compare, measured_stats, predicted_stats
from infsim.validation.formats import load_measured
from infsim.validation.measured import MeasuredRun
from infsim.validation.replay import (
    attach_prefix_ids,
    check_model,
    check_workload_options,
    replay_trace,
    successful_rows,
)
from infsim.workload.spec import build_trace
from infsim.workload.trace import Trace


def _recorded(measured: MeasuredRun) -> int | None:
    if measured.requests is not None:
        return measured.requests.num_requests
    if measured.num_completed is None:
        return None
    return measured.num_completed + (measured.num_failed or 0)


def _scenario_trace(measured: MeasuredRun, scenario: Scenario, base_dir: Path) -> Trace:
    trace = build_trace(
        scenario.workload, base_dir=base_dir, rng=np.random.default_rng(scenario.seed)
    )
    recorded = _recorded(measured)
    if recorded is not None and trace.num_requests > recorded:
        raise InputError(
            f"the scenario's workload has {trace.num_requests} requests but the benchmark "
            f"{measured.source} recorded only {recorded}; it cannot be replayed "
            f"({measured.why_not_replayable()}), so the scenario's workload stands in for it "
            "and must describe the same requests (set workload.max_requests or num_requests)"
        )
    return trace


def all_at_once(measured: MeasuredRun) -> bool:
    """A closed loop with no rate limit: every request is ready at t = 0 and waits only for
    a free slot, so the recorded start times are outcomes, not inputs."""
    return measured.max_concurrency is not None and measured.request_rate_per_s == math.inf


def closed_loop(
    measured: MeasuredRun, resolved: ResolvedScenario
) -> tuple[ResolvedScenario, list[str]]:
    """Carry the benchmark client's in-flight limit into the replay (`InputError` if the
    scenario states another one)."""
    limit = measured.max_concurrency
    own = resolved.scenario.workload.max_concurrency
    if limit is None:
        return resolved, []
    if own is not None and own != limit:
        raise InputError(
            f"{measured.source}: the benchmark client kept at most {limit} requests in flight "
            f"but the scenario sets workload.max_concurrency={own}; remove it (--set "
            "workload.max_concurrency=null) or make it match"
        )
    workload = resolved.scenario.workload.model_copy(update={"max_concurrency": limit})
    resolved = replace(
        resolved, scenario=resolved.scenario.model_copy(update={"workload": workload})
    )
    if measured.request_rate_per_s == math.inf:
        note = (
            f"closed loop: at most {limit} requests in flight, each sent when a slot frees "
            "(recorded start times are outcomes of the run, not replayed)"
        )
    else:
        note = (
            f"closed loop: at most {limit} requests in flight; recorded start times are "
            "used as the earliest send times (the client's intended schedule is not recorded)"
        )
    return resolved, [note]


def validate(
    bench_path: str | Path,
    scenario: Scenario | str | Path,
    base_dir: str | Path | None = None,
    fmt: str = "auto",
    *,
    run_index: int | None = None,
    allow_model_mismatch: bool = False,
    prefix_trace: Trace | None = None,
) -> ValidationResult:
    """Replay `bench_path` through `scenario` (a `Scenario` or a YAML path) and compare.

    `base_dir` resolves the scenario's relative paths (default: the YAML's folder, or
    "."); `fmt` is a benchmark format name or "auto"; `run_index` picks one run of a
    multi-run file; `prefix_trace` (the trace file a timed-trace benchmark replayed)
    supplies prefix hash ids, which benchmark results do not record. Raises `InputError`
    for contradictions (see `infsim.validation.replay`).
    """
    if not isinstance(scenario, Scenario):
        path = Path(scenario)
        scenario = load_scenario(path)
        base_dir = path.parent if base_dir is None else base_dir
    base = Path(base_dir or ".")
    measured = load_measured(bench_path, fmt, run_index)
    resolved = resolve(scenario, base, source=str(bench_path))
    notes = list(measured.notes)
    if not allow_model_mismatch:
        note = check_model(measured, scenario.model, resolved.model.name)
        notes.extend([note] if note else [])
    if measured.replayable:
        check_workload_options(scenario)
        rows, row_notes = successful_rows(measured, scenario.workload.max_requests)
        notes.extend(row_notes)
        resolved, closed_notes = closed_loop(measured, resolved)
        notes.extend(closed_notes)
        trace = replay_trace(rows, str(bench_path), send_at_once=all_at_once(measured))
        if prefix_trace is not None:
            trace = attach_prefix_ids(trace, prefix_trace, str(bench_path))
            notes.append(f"prefix hash ids from {prefix_trace.source}")
    else:
        rows = measured.requests
        if rows is not None and not (~rows.failed).any():
            raise InputError(f"{bench_path}: the benchmark has no successful requests")
        if measured.num_completed == 0:
            raise InputError(f"{bench_path}: the benchmark completed no requests")
        notes.append(
            f"NOT REPLAYED: {measured.why_not_replayable()}; predictions come from "
            "the scenario's own workload, compared on what the file states"
        )
        trace = _scenario_trace(measured, scenario, base)
    result = run_resolved(resolved, trace)
    measured_values, sources = measured_stats(measured, rows)
    metrics, median = compare(measured_values, predicted_stats(result.summary))
    run_info: dict[str, Any] = {
        "format": measured.format,
        "source": str(bench_path),
        "model_measured": measured.model,
        "model_simulated": resolved.model.name,
        "deployment": resolved.deployment_label(),
        "replayed": measured.replayable,
        "num_requests_simulated": trace.num_requests,
        "num_requests_recorded": _recorded(measured),
        "num_failed_recorded": measured.num_failed,
        "num_finished_predicted": result.summary["requests"]["completed"],
        "measured_from": sources,
        "notes": notes,
    }
    return ValidationResult(metrics, median, run_info)
