"""Library entry points: `load_scenario` → `run` → `RunResult` (and `write`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from infsim import arrays
from infsim.cost import coverage
from infsim.disagg import outputs as disagg_outputs
from infsim.frontend.costs import HOST_DEFAULTS, frontend_costs
from infsim.metrics.percentiles import describe_weighted
from infsim.metrics.sink import TableSink, release_memory
from infsim.metrics.summary import SUMMARY_COLUMNS, summarize
from infsim.report.fleet import extend_summary
from infsim.report.write import write_run
from infsim.scenario.load import load_scenario
from infsim.scenario.resolve import ResolvedScenario, resolve
from infsim.scenario.run import resolved_run
from infsim.scenario.schema import Scenario
from infsim.sim.engine import simulate
from infsim.sim.split_run import choose_split, jobs_record, simulate_split
from infsim.speculative.summary import speculative_summary
from infsim.workload.spec import build_trace
from infsim.workload.trace import Trace

__all__ = ["RunResult", "Scenario", "load_scenario", "prepare", "run"]

logger = logging.getLogger("infsim.split")  # stderr when logging is not configured


@dataclass(frozen=True)
class RunResult:
    """A run's summary and output tables. The requests and timeline tables are held in
    memory, or (a run given a spool directory) in Parquet files there, read on access."""

    resolved: ResolvedScenario
    summary: dict[str, Any]
    request_table: TableSink
    step_table: TableSink
    fleet_timeline: pa.Table | None = None  # replicas per pool per state, queue, cost rate
    disaggregation_timeline: pa.Table | None = None  # KV transfers queued / in flight

    @property
    def requests(self) -> pa.Table:
        """One row per request (`requests.parquet`)."""
        return self.request_table.table()

    @property
    def timeline(self) -> pa.Table:
        """One row per engine step or fast-forwarded run (`timeline.parquet`)."""
        return self.step_table.table()

    def write(self, out_dir: Path) -> None:
        write_run(
            out_dir,
            requests=self.request_table,
            timeline=self.step_table,
            resolved_scenario=self.resolved.scenario.model_dump(mode="json"),
            summary=self.summary,
            fleet_timeline=self.fleet_timeline,
            disaggregation_timeline=self.disaggregation_timeline,
        )


def prepare(
    scenario: Scenario, base_dir: Path | str | None = None, source: str = "scenario"
) -> tuple[ResolvedScenario, Trace]:
    """Resolve catalogs and defaults, and build the workload (seeded by `scenario.seed`).
    Relative paths (trace files, calibration directories) resolve against `base_dir`:
    by default the folder of the YAML the scenario was loaded from, else the current one."""
    base = _base_dir(scenario, base_dir)
    resolved = resolve(scenario, base, source)
    rng = np.random.default_rng(scenario.seed)
    trace = build_trace(scenario.workload, base_dir=base, rng=rng)
    return resolved, trace


def _base_dir(scenario: Scenario, base_dir: Path | str | None) -> Path:
    if base_dir is not None:
        return Path(base_dir)
    loaded = scenario.source_path
    return loaded.parent if loaded is not None else Path(".")


def run(
    scenario: Scenario,
    base_dir: Path | str | None = None,
    *,
    source: str = "scenario",
    progress: Callable[[float, int], None] | None = None,
) -> RunResult:
    resolved, trace = prepare(scenario, base_dir, source)
    return run_resolved(resolved, trace, progress=progress)


def run_resolved(
    resolved: ResolvedScenario,
    trace: Trace,
    *,
    progress: Callable[[float, int], None] | None = None,
    spool_dir: Path | None = None,
    replica_jobs: int | None = None,
) -> RunResult:
    """Simulate and summarise. With `spool_dir` (an existing, empty directory, kept as long
    as the result is used) the requests and timeline tables are streamed to Parquet files
    there during the run and the summary reads back only the columns it needs, so memory
    does not grow with the run's length; without it they are held in memory.

    With `replica_jobs` = N ≥ 2 the replicas are simulated in up to N worker processes and
    merged, when the run allows it (`infsim.sim.split`: a router that ignores replica load,
    a static fleet, open loop); otherwise it runs serially with a note on stderr. Either way
    `summary.simulation` records `replica_jobs` (the workers used) and, when serial, why
    (`replica_jobs_note`). A split run reports progress as its workers post it."""
    run = resolved_run(resolved)
    plan, split_note = choose_split(run, trace, replica_jobs) if replica_jobs else (None, None)
    jobs = jobs_record(replica_jobs, plan, split_note) if replica_jobs else None
    if plan is not None:
        out, cost_models = simulate_split(run, trace, plan, spool_dir, progress)
        del plan  # its per-request arrays are not needed by the summary
    else:
        if split_note is not None and replica_jobs > 1:
            logger.warning("replica_jobs=%d: serial run: %s", replica_jobs, split_note)
        with coverage.collecting() as cost_models:  # the cost models the run builds
            out = simulate(run, trace, progress, spool_dir)
    # The samples first, and let go, before the requests' columns are read: the two are
    # the memory peak of a long run and need not be held at the same time. The recorder's
    # buffers go before the percentiles are sorted (the samples are copies of them).
    samples = out.recorder.itl_samples()
    decode_runs = out.recorder.decode_runs_by_width()
    out.recorder.release_samples()
    release_memory()
    itl = describe_weighted(*samples)
    del samples
    columns = list(SUMMARY_COLUMNS)
    if out.disaggregation is not None:  # per-request prefill/transfer/decode columns
        columns += disagg_outputs.REQUEST_COLUMNS
    requests = out.recorder.requests_table(columns)
    summary = summarize(
        requests,
        itl,
        slo=run.slo,
        num_gpus=run.num_gpus or resolved.num_gpus,
        usd_per_gpu_hour=resolved.usd_per_gpu_hour,
        simulated_s=out.simulated_s,
        wall_s=out.wall_s,
        num_events=out.num_events,
    )
    if jobs is not None:
        summary["simulation"] |= jobs
    summary["deployment"] = {
        "model": resolved.model.name,
        "gpu": resolved.gpu.name,
        "num_gpus": resolved.num_gpus,
        "kv_cache_blocks_per_replica": resolved.kv.num_blocks,
        "kv_cache_tokens_per_replica": resolved.kv.num_tokens,
        "kv_capacity_source": resolved.kv.source,
        "usd_per_gpu_hour": resolved.usd_per_gpu_hour,
    }
    extend_summary(
        summary,
        out.fleet,
        indices=out.recorder.indices,
        table=requests,
        slo=run.slo,
        end_s=out.simulated_s,
        static=not run.explicit_pools and not out.fleet.dynamic,
    )
    timeline = out.recorder.timeline_table(["replica_id", "start_s", "end_s"])
    step_s = arrays.to_numpy(timeline.column("end_s")) - arrays.to_numpy(timeline.column("start_s"))
    summary["calibration"] = cost_models.section(decode_runs, float(step_s.sum())) | host_section(
        resolved, [m for _, m in cost_models.models]
    )
    spec = resolved.scenario.engine.speculative
    if spec is not None and out.speculative is not None:
        summary["speculative"] = speculative_summary(spec, out.speculative, timeline)
    disagg_timeline = None
    if out.disaggregation is not None:
        summary["disaggregation"] = disagg_outputs.disaggregation_section(
            out.disaggregation, requests, timeline, out.simulated_s
        )
        disagg_timeline = disagg_outputs.timeline_table(out.disaggregation)
    return RunResult(
        resolved,
        summary,
        out.recorder.requests,
        out.recorder.steps,
        out.fleet.timeline,
        disagg_timeline,
    )


def host_section(rs: ResolvedScenario, models: list[Any]) -> dict[str, Any]:
    """summary.json's `calibration.step_overhead` and `calibration.frontend`: the host
    costs the run used and where each came from. `models`: the cost models the run built,
    the scenario's own first; when it priced its overhead from the table's measured rows,
    the terms are the ones it fitted (`CalibratedCostModel._overhead`)."""
    cfg = rs.replica()
    overhead = cfg.step_overhead
    model = models[0] if models else None
    if getattr(model, "overhead_measured", False):
        fit = model.overhead_fit
        source = f"calibration {cfg.calibration_name}: measured step_overhead rows"
        step = {"fixed_s": fit.fixed_s, "per_seq_s": fit.per_seq_s,
                "per_worker_s": 0.0, "source": source}  # fmt: skip
    else:
        step = {"fixed_s": overhead.fixed_s, "per_seq_s": overhead.per_seq_s,
                "per_worker_s": overhead.per_worker_s, "source": overhead.source}  # fmt: skip
    front = frontend_costs(rs.scenario.frontend)
    return {
        "step_overhead": step,
        "frontend": {name: getattr(front, name) for name in HOST_DEFAULTS}
        | {"api_server_count": front.api_server_count, "source": rs.frontend_source},
    }
