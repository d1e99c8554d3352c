"""`infsim plan`: parse, call `infsim.plan`, print. No search logic here."""

from __future__ import annotations

import time
from pathlib import Path

import click

from infsim.sweep.cli import _FORCE, _OUT, _REL_TOL, _SECONDS, _SET_HELP, _SHARE, _Number

_RATE = _Number(0, 1e9, low_open=True, allowed="requests per second, a finite number above 0")
_SCALE = _Number(1, 1024, low_open=True, allowed="a factor above 1 and at most 1024")


@click.command("plan")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gpu", "gpus", multiple=True, metavar="NAME",
              help="Candidate GPU (repeatable or comma-separated; default: every catalog GPU "
              "on which the model fits).")  # fmt: skip
@click.option("--tensor-parallel", "tps", multiple=True, metavar="N",
              help="Candidate TP (repeatable or comma-separated; default 1, 2, 4, 8).")  # fmt: skip
@click.option("--weight-precision", "precisions", multiple=True, metavar="P",
              help="Candidate weight precision (repeatable or comma-separated; default: the "
              "scenario's deployment.weight_precision).")  # fmt: skip
@click.option("--target-rate", type=_RATE, default=None,
              help="Mean arrival rate to plan for, req/s (workload.target_rate_per_s); "
              "default: the scenario's own rate.")  # fmt: skip
@click.option(
    "--ttft-p99", type=_SECONDS, default=None, help="Max p99 TTFT (s); default slo.ttft_s."
)
@click.option(
    "--tpot-p99", type=_SECONDS, default=None, help="Max p99 TPOT (s); default slo.tpot_s."
)
@click.option("--e2e-p99", type=_SECONDS, default=None, help="Max p99 E2E (s); default slo.e2e_s.")
@click.option("--min-attainment", type=_SHARE, default=None,
              help="Min share of requests meeting all the scenario's slo: thresholds; alone, "
              "it replaces the p99 reading of slo: (as infsim capacity).")  # fmt: skip
@click.option("--max-replicas", type=click.IntRange(1, 1024), default=64, show_default=True,
              help="Largest replica count tried per candidate.")  # fmt: skip
@click.option("--headroom-tol", type=_REL_TOL, default=0.05, show_default=True,
              help="Relative precision of the headroom rate.")  # fmt: skip
@click.option("--max-headroom", type=_SCALE, default=8.0, show_default=True,
              help="Probe headroom up to this multiple of the target rate.")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help=_SET_HELP)
@_OUT
@click.option("--executor", type=click.Choice(["process", "serial", "ray"]), default="process",
              show_default=True, help="process: a local pool; serial: in this process; "
              "ray: Ray tasks.")  # fmt: skip
@click.option("-j", "--jobs", "--workers", "jobs", type=click.IntRange(1, 4096), default=None,
              help="Workers (default: all cores).")  # fmt: skip
@click.option("--address", default=None, help="Ray cluster: auto or ray://host:port.")
@_FORCE
@click.option("--quiet", is_flag=True, help="No per-round progress lines.")
def plan_cmd(**options):
    """For each candidate (GPU × TP × weight precision) find the fewest replicas that meet
    the SLO at the target load, its headroom (the highest rate still meeting it), $/hour,
    $/M output tokens and p99s; print them ranked by cost with the Pareto front, and write
    DIR/plan.parquet and DIR/report.html. Every point is kept in DIR's result store: a
    killed plan, run again, resumes at once."""
    from infsim.plan.main import PlanRequest, plan

    t0 = time.perf_counter()
    request = PlanRequest(**options)
    result = plan(request, echo=lambda text: click.echo(text, err=True))
    _print(result)
    click.echo(
        f"{len(result.run.points)} points ({result.run.num_cached} stored before, "
        f"{result.run.num_run} run now) in {time.perf_counter() - t0:.1f} s → "
        f"{result.out_dir}/plan.parquet, {result.out_dir}/report.html"
    )


def _print(result) -> None:
    from rich.console import Console

    from infsim.plan.main import console_table

    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    console.print(console_table(result.table))
    click.echo(result.answer)
