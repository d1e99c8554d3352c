"""`infsim sweep | capacity | optimize | results | report`: parse, call, print. No logic."""

from __future__ import annotations

import math
from pathlib import Path

import click

from infsim.errors import InputError


class _Number(click.ParamType):
    """A finite float in [low, high] (`low` excluded when `low_open`): 0, negatives, inf
    and nan are refused where they mean nothing, with the option named (exit 2)."""

    name = "number"

    def __init__(self, low: float, high: float, *, low_open: bool, allowed: str) -> None:
        self.low, self.high, self.low_open, self.allowed = low, high, low_open, allowed

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{str(value)[:80]!r} is not a number; allowed: {self.allowed}", param, ctx)
        too_low = number <= self.low if self.low_open else number < self.low
        if not math.isfinite(number) or too_low or number > self.high:
            self.fail(f"{value} is not allowed; allowed: {self.allowed}", param, ctx)
        return number


_SECONDS = _Number(0, 1e9, low_open=True, allowed="seconds, a finite number above 0")
_SHARE = _Number(0, 1, low_open=True, allowed="a share of requests above 0 and at most 1")
_REL_TOL = _Number(1e-4, 0.5, low_open=False, allowed="a fraction from 0.0001 to 0.5")
_FORCE = click.option(
    "--force",
    is_flag=True,
    help="Use a directory that holds another job's results: replace its sweep.json "
    "(stored points are kept and reused).",
)

_SET_HELP = "Override a base-scenario field: dotted.path=value (repeatable)."
_OUT = click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sweep directory (result store); default runs/<command>-<scenario name>.",
)


def _executor_options(fn):
    fn = click.option(
        "--executor",
        type=click.Choice(["process", "serial", "ray"]),
        default="process",
        show_default=True,
        help="process: a local pool; serial: in this process; ray: Ray tasks.",
    )(fn)
    from infsim.sweep.executors import MAX_JOBS

    fn = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1, max=MAX_JOBS),
        default=None,
        help="Workers (default: all cores).",
    )(fn)
    return click.option(
        "--address",
        default=None,
        help="Ray cluster: auto or ray://host:port (default: start a local instance).",
    )(fn)


def _slo_options(fn):
    for name, kind, help_text in (
        ("--ttft-p99", _SECONDS, "Max p99 TTFT (s)."),
        ("--tpot-p99", _SECONDS, "Max p99 TPOT (s)."),
        ("--e2e-p99", _SECONDS, "Max p99 end-to-end latency (s)."),
        ("--min-attainment", _SHARE, "Min share of requests meeting the scenario's slo: "
         "thresholds (0 < share ≤ 1)."),
    ):  # fmt: skip
        fn = click.option(name, type=kind, default=None, help=help_text)(fn)
    return fn


def _target(ttft_p99, tpot_p99, e2e_p99, min_attainment):
    from infsim.sweep.search import SLOTarget

    if all(v is None for v in (ttft_p99, tpot_p99, e2e_p99, min_attainment)):
        min_attainment = 0.99  # the scenario's own slo: thresholds, met by 99% of requests
    return SLOTarget(ttft_p99, tpot_p99, e2e_p99, min_attainment)


def _default_out(command: str, ctx) -> Path:
    """runs/<command>-<scenario name>, the name made a safe directory name
    (`infsim.report.paths.safe_run_dir`: no separators, no `..`, no absolute path)."""
    from infsim.report.paths import safe_run_dir

    return safe_run_dir(f"{command}-{ctx.base_raw.get('name', 'scenario')}", "runs")


def _progress(quiet: bool, label: str):
    from infsim.sweep.progress import BarProgress
    from infsim.sweep.runner import Progress

    return Progress() if quiet else BarProgress(label)


@click.command("sweep")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--axes",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Axes file (default: the scenario's sweep: block).",
)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help=_SET_HELP)
@_OUT
@_executor_options
@click.option("--retry-failed", is_flag=True, help="Run stored failed points again.")
@click.option(
    "--max-points",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse a sweep of more points than this (default 100,000, or INFSIM_MAX_POINTS).",
)
@_FORCE
@click.option("--quiet", is_flag=True, help="No progress bar and no table.")
def sweep_cmd(  # noqa: PLR0913
    scenario, axes, overrides, out_dir, executor, jobs, address, retry_failed, max_points,
    force, quiet,
):  # fmt: skip
    """Run SCENARIO at every point of the axes (grid or zip), resumably: finished points
    are stored at once under the sweep directory and never run again."""
    from infsim.sweep.executors import make_executor
    from infsim.sweep.job import load_base, run_sweep, sweep_spec
    from infsim.sweep.store import ResultStore

    ctx, block = load_base(scenario, overrides)
    spec = sweep_spec(scenario, block, axes)
    out_dir = out_dir or _default_out("sweep", ctx)
    store = ResultStore(out_dir)
    plan, outcome = run_sweep(
        ctx,
        spec,
        store,
        make_executor(executor, jobs, address),
        _progress(quiet, "points"),
        axes_source=str(axes or f"{scenario}: sweep"),
        retry_failed=retry_failed,
        force=force,
        max_points=max_points,
    )
    recomputed = f" ({len(outcome.recomputed)} damaged, recomputed)" if outcome.recomputed else ""
    click.echo(
        f"{len(plan.tasks)} points ({outcome.num_points} distinct), {len(plan.skipped)} "
        f"skipped, {outcome.num_cached} already stored, {outcome.num_executed} run now"
        f"{recomputed}, {outcome.num_failed} failed → {out_dir}",
        err=True,
    )
    if not quiet:
        _print_results(out_dir, None, None, None, limit=40)


@click.command("results")
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--where", default=None, help="Filter, e.g. \"status == 'ok' and latency_s.ttft.p99 < 0.5\"."
)
@click.option("--sort", default=None, help="Columns, '-' for descending: cost.usd_per_hour,-x.")
@click.option(
    "--columns",
    default=None,
    help="Comma-separated columns to show (default: "
    "the axes and the main metrics); 'all' for every column.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the (filtered, sorted) table, all columns, as CSV.",
)
@click.option("--all", "include_all", is_flag=True, help="Every stored point, not the manifest's.")
def results_cmd(sweep_dir, where, sort, columns, csv_path, include_all):
    """Print the table of a sweep directory, filtered and sorted; export CSV."""
    from infsim.sweep.results import write_csv

    if csv_path is not None:
        check_out_file(csv_path, "--csv")
    table = _print_results(sweep_dir, where, sort, columns, include_all)
    if csv_path is not None:
        write_csv(table, csv_path)
        click.echo(f"wrote {len(table)} rows to {csv_path}", err=True)


def check_out_file(path: Path, option: str) -> None:
    """Refuse, before any work, an output file whose directory does not exist."""
    parent = path.parent
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory; give a file name")
    if not parent.is_dir():
        raise InputError(
            f"{option} {path}: the directory {parent} does not exist; create it first or "
            "give another path"
        )


def _print_results(sweep_dir, where, sort, columns, include_all=False, limit=None):
    from rich.console import Console

    from infsim.sweep import results as res
    from infsim.sweep.store import ResultStore

    store = ResultStore(sweep_dir, create=False)  # a reader: creates and deletes nothing
    store.manifest()  # not a sweep directory, or a damaged sweep.json: said here
    table = res.results_table(store, include_all=include_all)
    if table.empty:
        click.echo("(no finished points yet)")
        return table
    if where:
        table = res.filter_rows(table, where)
    if sort:
        table = res.sort_rows(table, sort)
    axes = list(store.manifest().get("axes", {}).get("axes", {}))
    if columns == "all":
        shown = list(table.columns)
    elif columns:
        shown = [c.strip() for c in columns.split(",") if c.strip()]
        for c in shown:
            res.check_column(table, c, "--columns")
    else:
        shown = res.default_columns(table, axes or _override_columns(store))
    from infsim.sweep.tables import render

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(160, 12 * len(shown)))
    console.print(render(table[shown].head(limit) if limit else table[shown]))
    if limit and len(table) > limit:
        click.echo(f"(first {limit} of {len(table)} points; infsim results {sweep_dir} for all)")
    return table


def _override_columns(store) -> list[str]:
    points = store.manifest().get("points", [])
    return list(points[0]["overrides"]) if points else []


@click.command("capacity")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help=_SET_HELP)
@_slo_options
@click.option(
    "--rel-tol",
    type=_REL_TOL,
    default=0.02,
    show_default=True,
    help="Stop when the bracket is within this fraction.",
)
@_OUT
@_FORCE
@click.option("--quiet", is_flag=True)
def capacity_cmd(  # noqa: PLR0913
    scenario,
    overrides,
    ttft_p99,
    tpot_p99,
    e2e_p99,
    min_attainment,
    rel_tol,
    out_dir,
    force,
    quiet,
):
    """Highest arrival rate (workload.rate_scale × the trace's rate) at which SCENARIO
    meets the SLO, by bisection to --rel-tol. Without SLO options: the scenario's slo:
    thresholds met by 99% of requests."""
    from infsim.sweep.capacity import find_capacity
    from infsim.sweep.job import load_base
    from infsim.sweep.store import ResultStore

    ctx, _ = load_base(scenario, overrides)
    target = _target(ttft_p99, tpot_p99, e2e_p99, min_attainment)
    out_dir = out_dir or _default_out("capacity", ctx)
    report = find_capacity(ctx, target, ResultStore(out_dir), rel_tol=rel_tol, force=force)
    r = report.result
    from infsim.sweep.capacity import absolute_rate_scale

    scale, upper = absolute_rate_scale(ctx, r.scale), absolute_rate_scale(ctx, r.upper)
    slo = ctx.base_raw.get("slo")
    level = slo.get("confidence") if isinstance(slo, dict) else None  # validated by load_base
    slo_text = target.describe() + (f" with {level:.0%} confidence" if level else "")
    if not quiet:  # every rate_scale below is workload.rate_scale, as the probes ran
        for p in report.probes:
            click.echo(f"  rate_scale {p['rate_scale']:10.4f}  {'meets' if p['met'] else 'misses'}")
    if r.scale == 0:
        click.echo(f"no load meets {slo_text} (down to rate_scale {upper:g})")
    elif r.capped:
        click.echo(
            f"meets {slo_text} up to the largest probed rate_scale {scale:g} "
            f"({report.capacity_rate_per_s:.3f} req/s); capacity is higher"
        )
    else:
        click.echo(
            f"capacity: {report.capacity_rate_per_s:.3f} req/s (rate_scale {scale:.4f}; "
            f"misses at {upper:.4f}, tolerance {r.rel_tol:.0%}) for {slo_text} → "
            f"{out_dir}"
        )


@click.command("optimize")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--space",
    "axes",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Axes file whose values are the choices (default: the sweep: block).",
)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help=_SET_HELP)
@_slo_options
@click.option(
    "--objective",
    default="cost.usd_per_million_output_tokens",
    show_default=True,
    help="Summary column to minimise (cost.usd_per_hour: $/hour at this load).",
)
@click.option(
    "--latency",
    default="latency_s.e2e.p99",
    show_default=True,
    help="Latency column of the cost-vs-latency Pareto front.",
)
@click.option("--trials", type=click.IntRange(min=1, max=100_000), default=30, show_default=True)
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True)
@_OUT
@_executor_options
@_FORCE
@click.option("--quiet", is_flag=True)
def optimize_cmd(  # noqa: PLR0913
    scenario,
    axes,
    overrides,
    ttft_p99,
    tpot_p99,
    e2e_p99,
    min_attainment,
    objective,
    latency,
    trials,
    seed,
    out_dir,
    executor,
    jobs,
    address,
    force,
    quiet,
):
    """Cheapest configuration of the space meeting the SLO (Optuna TPE with constraints,
    reproducible by --seed and --jobs), and the Pareto front of cost vs p99 latency."""
    from infsim.sweep.executors import make_executor
    from infsim.sweep.job import load_base, sweep_spec
    from infsim.sweep.optimize import OptimizeSettings, optimize
    from infsim.sweep.store import ResultStore

    ctx, block = load_base(scenario, overrides)
    spec = sweep_spec(scenario, block, axes)
    settings = OptimizeSettings(
        objective,
        latency,
        trials,
        seed,
        batch_size=1 if executor == "serial" else (jobs or _cores()),
    )
    out_dir = out_dir or _default_out("optimize", ctx)
    report = optimize(
        ctx,
        spec,
        _target(ttft_p99, tpot_p99, e2e_p99, min_attainment),
        ResultStore(out_dir),
        settings,
        make_executor(executor, jobs, address),
        _progress(quiet, "trials"),
        force=force,
    )
    if report.best is None:
        click.echo(f"no trial met the SLO in {trials} trials → {out_dir}")
    else:
        b = report.best
        click.echo(
            f"best: {objective} = {b.objective:.4g} at {_describe(b.overrides)} "
            f"(trial {b.number}) → {out_dir}"
        )
    click.echo(f"Pareto front ({objective} vs {latency}):")
    for t in report.pareto:
        click.echo(f"  {t.objective:10.4g}  {_describe(t.overrides)}  [{t.state}]")


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _describe(overrides) -> str:
    from infsim.sweep.points import describe

    return describe(overrides)


@click.command("report")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file (default: DIRECTORY/report.html).",
)
def report_cmd(directory, out):
    """Write report.html for a run directory (deployment, headline numbers, latency tails
    with SLO lines, arrivals, queues and KV use over time, the fleet's replicas and $/h) or
    a sweep directory (table, cost vs p99 with the Pareto front, capacity curve).
    Self-contained, offline."""
    from infsim.sweep.report_html import write_report

    if out is not None:
        check_out_file(out, "-o")
    path = write_report(directory, out)
    click.echo(f"wrote {path}")


COMMANDS = (sweep_cmd, capacity_cmd, optimize_cmd, results_cmd, report_cmd)
