"""`infsim plan` as a function: a request in, a ranked table and its files out.

request ─▶ base scenario (--set applied, checked: one pool, no autoscaling)
        ─▶ target rate (--target-rate, else the scenario's own mean rate)
        ─▶ SLO (--ttft-p99 … else the scenario's slo:, read as p99 limits)
        ─▶ candidates (GPU × TP × precision) and the calibration of each
        ─▶ job.run_plan (rounds of points through the result store)
        ─▶ output.plan_table ─▶ DIR/plan.parquet, DIR/report.html
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from infsim.plan import candidates as cand
from infsim.plan.job import PlanRun, PlanSettings, run_plan
from infsim.plan.output import load_curves, plan_table, write_parquet
from infsim.plan.report import write_plan_report
from infsim.sweep.search import SLOTarget


@dataclass(frozen=True)
class PlanRequest:
    """The command line's options, as given (None / empty = the default)."""

    scenario: Path
    gpus: tuple[str, ...] = ()
    tps: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    target_rate: float | None = None
    ttft_p99: float | None = None
    tpot_p99: float | None = None
    e2e_p99: float | None = None
    min_attainment: float | None = None
    max_replicas: int = 64
    headroom_tol: float = 0.05
    max_headroom: float = 8.0
    overrides: tuple[str, ...] = ()
    out_dir: Path | None = None
    executor: str = "process"
    jobs: int | None = None
    address: str | None = None
    force: bool = False
    quiet: bool = False


@dataclass
class PlanResult:
    run: PlanRun
    table: pd.DataFrame
    target: SLOTarget
    out_dir: Path
    answer: str
    header: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlanSetup:
    """Everything decided before the first point runs (and printed as the header)."""

    ctx: Any
    candidates: list[cand.Candidate]
    target: SLOTarget
    settings: PlanSettings
    header: list[str]


def setup(request: PlanRequest) -> PlanSetup:
    """The base scenario (checked), target rate, SLO, candidates and their calibration."""
    from infsim.scenario.load import validate_scenario
    from infsim.sweep.job import load_base

    ctx, _ = load_base(request.scenario, request.overrides)  # a sweep: block is ignored
    cand.check_base(ctx)
    scenario = validate_scenario(ctx.base_raw, ctx.source)
    rate, rate_origin = _target_rate(request, ctx)
    ctx, notes = cand.with_target_rate(ctx, rate)
    target, slo_text = cand.slo_target(
        scenario.slo, request.ttft_p99, request.tpot_p99, request.e2e_p99, request.min_attainment
    )
    candidates, calibration_line = cand.calibration_policy(ctx, _candidates(request, ctx, scenario))
    header = [
        f"plan: {ctx.source} ({scenario.model}), {len(candidates)} candidates",
        f"load: {rate:g} req/s mean arrival rate ({rate_origin})",
        f"SLO: {slo_text}",
        calibration_line,
        *(f"note: {n}" for n in notes),
    ]
    if scenario.deployment.replicas != 1 and "replicas" in (ctx.base_raw.get("deployment") or {}):
        header.append(
            f"note: deployment.replicas {scenario.deployment.replicas} is what plan searches"
        )
    settings = PlanSettings(rate, request.max_replicas, request.headroom_tol, request.max_headroom)
    return PlanSetup(ctx, candidates, target, settings, header)


def plan(request: PlanRequest, echo: Callable[[str], None] = print) -> PlanResult:
    from infsim.report.paths import safe_run_dir
    from infsim.sweep.executors import make_executor
    from infsim.sweep.store import ResultStore

    job = setup(request)
    for line in job.header:
        echo(line)
    name = job.ctx.base_raw.get("name", "scenario")
    out_dir = request.out_dir or safe_run_dir(f"plan-{name}", "runs")
    with quiet_fallback_warnings():
        run = run_plan(
            job.ctx,
            job.candidates,
            job.target,
            job.settings,
            ResultStore(out_dir),
            make_executor(request.executor, request.jobs, request.address),
            on_round=None if request.quiet else _round_printer(echo),
            force=request.force,
            notes={"header": job.header},
        )
    for line in fallback_lines(run):
        echo(line)
    for state in run.states:
        if state.skipped is not None:
            echo(f"skipped {state.candidate.label()}: {state.skipped}")
    table = plan_table(run)
    write_parquet(table, out_dir / "plan.parquet")
    write_plan_report(out_dir / "report.html", f"infsim plan: {out_dir.name}", table,
                      job.target, " · ".join(job.header[:3]), load_curves(run, table))  # fmt: skip
    answer = answer_line(table, job.settings.target_rate_per_s)
    return PlanResult(run, table, job.target, out_dir, answer, job.header)


@contextlib.contextmanager
def quiet_fallback_warnings() -> Iterator[None]:
    """Hold back the per-process roofline-fallback warnings of the cost models while the
    plan runs: every worker of every round would repeat them. `fallback_lines` gives them
    once each afterwards, from the stored points."""
    logger = logging.getLogger("infsim.calibration")
    block = logging.Filter("infsim.calibration.plan-quiet")  # matches no record: drops all
    logger.addFilter(block)
    try:
        yield
    finally:
        logger.removeFilter(block)


def fallback_lines(run: PlanRun) -> list[str]:
    """Per calibration table, the largest share of a point's step time that was priced by
    the roofline (ops or shapes the table lacks), once each; from the evaluated points'
    summary.json `calibration.coverage.roofline`."""
    worst: dict[str, float] = {}
    for state in run.states:
        for row in state.rows.values():
            name, share = row.get("calibration.name"), row.get("calibration.coverage.roofline")
            if name and name != "roofline" and isinstance(share, float) and share > 0:
                worst[name] = max(worst.get(name, 0.0), share)
    return [
        f"calibration {name}: up to {share:.1%} of a point's step time priced by the roofline "
        "(ops or shapes the table lacks; infsim run on a point lists them)"
        for name, share in sorted(worst.items())
    ]


def _target_rate(request: PlanRequest, ctx) -> tuple[float, str]:
    if request.target_rate is not None:
        return request.target_rate, "--target-rate, set as workload.target_rate_per_s"
    given = (ctx.base_raw.get("workload") or {}).get("target_rate_per_s")
    if given is not None:
        return float(given), "the scenario's workload.target_rate_per_s"
    rate = cand.scenario_rate_per_s(ctx)
    return rate, "the scenario's own, set as workload.target_rate_per_s"


def _candidates(request: PlanRequest, ctx, scenario) -> list[cand.Candidate]:
    from infsim.catalog.model import load_model

    model = load_model(scenario.model, base_dir=ctx.base_dir)
    precisions = cand.precision_list(
        request.precisions or (scenario.deployment.weight_precision,), model.dtype
    )
    return cand.expand(cand.gpu_list(request.gpus), cand.tp_list(request.tps), precisions)


def _round_printer(echo: Callable[[str], None]) -> Callable[[int, int, int], None]:
    def show(round_no: int, points: int, cached: int) -> None:
        echo(f"  round {round_no}: {points} candidates searching, {cached} of their points stored")

    return show


def answer_line(table: pd.DataFrame, rate: float) -> str:
    """The cheapest SLO-meeting candidate in words; when it is priced by the roofline (no
    measured table for its GPU), also the cheapest one priced by a measured table, since
    the roofline is an uncalibrated estimate."""
    met = table[table["meets_slo"]]
    if table.empty or (table["status"] == "skipped").all():
        return ("answer: none: every candidate was skipped (reasons above); try other --gpu, "
                "--tensor-parallel or --weight-precision values")  # fmt: skip
    if met.empty:
        return f"answer: no candidate meets the SLO at {rate:g} req/s"
    lines = [f"answer: {_describe(met.iloc[0])}"]
    if met.iloc[0]["calibration"] == "roofline":
        lines[0] += " — priced by the roofline (no measured table for this GPU)"
        measured = met[met["calibration"] != "roofline"]
        if len(measured):
            lines.append(f"cheapest priced by a measured table: {_describe(measured.iloc[0])}")
    return "\n".join(lines)


def _describe(row: pd.Series) -> str:
    return (
        f"{int(row['replicas'])} × {row['gpu']} TP{int(row['tensor_parallel'])} "
        f"{row['weight_precision']} at ${row['usd_per_hour']:.2f}/h "
        f"(${row['usd_per_million_output_tokens']:.3f}/M output tokens), p99 TTFT "
        f"{row['ttft_p99_s'] * 1e3:.0f} ms, p99 TPOT {row['tpot_p99_s'] * 1e3:.1f} ms, "
        f"meets the SLO up to {row['headroom_rate_per_s']:.3g} req/s ({row['calibration']})"
    )


def console_table(table: pd.DataFrame):
    """The ranked table for the console (rich), costs in $ and latencies in ms."""
    from rich.table import Table

    out = Table(header_style="bold")
    for name in ("#", "GPU", "TP", "weights", "replicas", "SLO", "$/h", "$/M out tok",
                 "headroom req/s", "TTFT p99 ms", "TPOT p99 ms", "Pareto", "calibration",
                 "note"):  # fmt: skip
        out.add_column(name, justify="left" if name in ("GPU", "weights", "note") else "right")
    for row in table[table["status"] != "skipped"].itertuples(index=False):
        out.add_row(
            str(row.rank),
            row.gpu,
            str(row.tensor_parallel),
            row.weight_precision,
            _int(row.replicas),
            "met" if row.meets_slo else "missed",
            _fmt(row.usd_per_hour, "{:.2f}"),
            _fmt(row.usd_per_million_output_tokens, "{:.3f}"),
            _fmt(row.headroom_rate_per_s, "{:.3g}") + ("+" if row.headroom_capped else ""),
            _fmt(row.ttft_p99_s, "{:.0f}", 1e3),
            _fmt(row.tpot_p99_s, "{:.1f}", 1e3),
            "*" if row.pareto else "",
            row.calibration or "-",
            _SHORT_NOTES.get(row.status, row.note or ""),
        )
    return out


_SHORT_NOTES = {
    "latency_bound": "latency floor above the SLO",
    "max_replicas": "misses at --max-replicas",
    "failed": "a point failed (plan.parquet: note)",
}


def _fmt(value, pattern: str, scale: float = 1.0) -> str:
    return "-" if value is None or pd.isna(value) else pattern.format(value * scale)


def _int(value) -> str:
    return "-" if value is None or pd.isna(value) else str(int(value))
