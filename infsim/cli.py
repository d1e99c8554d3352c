"""`infsim` command line: parses arguments, calls `infsim.api`, prints. No model logic.

Every `InputError` (bad scenario, trace, override, path) is printed as one paragraph and
the command exits with status 2; click's own usage errors also exit with 2.
"""

from __future__ import annotations

import atexit
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from infsim.errors import InputError

_SET_HELP = (
    "Override a scenario field: dotted.path=value (repeatable), e.g. engine.max_num_seqs=64."
)


# The process ends when its command does, and the interpreter's last collection would walk
# every object still alive (the imported modules, the run's tables): ~45 ms of a small
# run's ~70 ms exit. Frozen objects are skipped; what infsim writes is closed by then.
atexit.register(gc.freeze)


MAX_MESSAGE_CHARS = 2000
"""An error message longer than this is cut in the middle (a bad value echoed whole can be
megabytes); the cut says how much was left out."""


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]} […{len(text) - 2 * keep:,} characters left out…] {text[-keep:]}"


class _Group(click.Group):
    """The one error boundary: `InputError` → its paragraph, exit 2; an operating-system
    error on a file (missing, unreadable, disk full, name too long) → what and where, exit 2;
    anything else is a bug in infsim → a short "internal error" naming a report file that
    holds the traceback, exit 1. Never a raw traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            command = getattr(importlib.import_module(module), attr)
            self.add_command(command, name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as err:
            click.echo(f"infsim: error: {shorten(str(err))}", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            what = err.strerror or type(err).__name__
            click.echo(f"infsim: error: {shorten(where + what)}", err=True)
            ctx.exit(2)
        except MemoryError:
            click.echo(
                "infsim: error: out of memory; reduce the trace, the number of requests or "
                "the grid, or run on a machine with more memory",
                err=True,
            )
            ctx.exit(2)
        except Exception as err:  # the boundary: a bug, reported as one
            report = _crash_report(err)
            click.echo(f"infsim: internal error ({type(err).__name__}: "
                       f"{shorten(str(err), 300)}); this is a bug in infsim, not in your "
                       f"input. The traceback is in {report}", err=True)  # fmt: skip
            ctx.exit(1)


def _crash_report(err: BaseException) -> str:
    """Write the traceback to a file in the temp directory; its path (or why not)."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        with tempfile.NamedTemporaryFile("w", prefix="infsim-crash-", suffix=".txt",
                                         delete=False) as handle:  # fmt: skip
            handle.write(f"infsim {' '.join(sys.argv[1:])}\n\n{text}")
            return handle.name
    except OSError:
        return "(no report: the temp directory is not writable)"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    from infsim.compiled import build_description

    click.echo(f"infsim, version {version('infsim')} ({build_description()})")
    ctx.exit()


@click.group(cls=_Group)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version,
              help="Show the version and the build (pure Python or compiled); exit.")  # fmt: skip
def main() -> None:
    """infsim: predict LLM-serving latency, throughput and cost from a trace."""


class _Progress:
    """A rich progress bar that appears only once a run has taken over ~2 s of wall time."""

    def __init__(self, total: int, span_s: float) -> None:
        self.total, self.span_s = total, span_s
        self._t0 = time.perf_counter()
        self._bar = None
        self._task = None

    def __call__(self, now_s: float, done: int) -> None:
        if self._bar is None:
            if time.perf_counter() - self._t0 < 2.0:
                return
            from rich.progress import Progress

            self._bar = Progress(transient=True, console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("simulating", total=self.total)
        self._bar.update(self._task, completed=done, description=f"t={now_s:,.0f}s")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory, replaced as a whole (default: runs/<scenario name as a safe "
    "directory name>; docs/outputs.md).",
)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help=_SET_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of a table.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--intervals",
    "num_intervals",
    type=int,
    default=0,
    show_default=True,
    metavar="N",
    help="Prediction intervals from N replications (0 = off; 20 is a good start): "
    "summary.json gains `intervals` and the cliff indicator `sensitivity` "
    "(docs/uncertainty.md).",
)
@click.option(
    "--interval-level",
    type=float,
    default=0.9,
    show_default=True,
    help="Level of the prediction intervals (0.5 to below 1).",
)
@click.option(
    "--interval-sources",
    default="all",
    show_default=True,
    help="Comma-separated sources of variation: workload, speed_noise, cost_model, "
    "model_error, drift, or all (docs/uncertainty.md).",
)
@click.option(
    "--sensitivity/--no-sensitivity",
    default=None,
    help="The cliff indicator: four extra runs (step cost and arrival rate ±10 %%) and a "
    "warning when a p99 moves more than 2×. Default: on with --intervals, else off.",
)
@click.option(
    "--executor",
    type=click.Choice(["process", "serial", "ray"]),
    default="process",
    show_default=True,
    help="Where the replications run (the sweep executors).",
)
@click.option("--jobs", type=int, default=None, help="Workers for the replications.")
@click.option(
    "--from-vllm-args",
    "vllm_args",
    default=None,
    metavar='"ARGS"',
    help="A `vllm serve` argument line whose engine arguments fill the scenario (before "
    "--set, which wins); arguments without effect or not modelled are listed.",
)
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option(
    "--replica-jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Simulate the replicas in up to N processes and merge (same outputs), where the "
    "router ignores replica load (round_robin, random) and the fleet is static; else "
    "serial, with a note (docs/fleet.md).",
)
def run(  # noqa: PLR0913
    scenario: Path,
    out_dir: Path | None,
    overrides: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    num_intervals: int,
    interval_level: float,
    interval_sources: str,
    sensitivity: bool | None,
    executor: str,
    jobs: int | None,
    vllm_args: str | None,
    no_report: bool,
    replica_jobs: int | None,
) -> None:
    """Simulate SCENARIO and write requests/timeline Parquet, summary.json, the resolved
    scenario and report.html to the output directory."""
    from infsim import api
    from infsim.report.atomic import spool_beside
    from infsim.report.paths import safe_run_dir
    from infsim.report.write import check_run_dir

    vllm = None
    if vllm_args is not None:
        from infsim.scenario.vllm_args import parse_vllm_args

        vllm = parse_vllm_args(vllm_args)
        overrides = (*vllm.overrides, *overrides)
        for note in vllm.notes():
            click.echo(f"--from-vllm-args: {note}", err=True)

    options = pool = None
    if num_intervals or sensitivity:
        from infsim.sweep.executors import make_executor
        from infsim.uncertainty.predict import IntervalOptions
        from infsim.uncertainty.sources import parse_sources

        cliff = bool(num_intervals) if sensitivity is None else sensitivity
        options = IntervalOptions(
            num_intervals, interval_level, parse_sources(interval_sources), cliff
        )
        options.check()  # refused before the simulation, not after it
        pool = make_executor(executor, jobs)
    spec = api.load_scenario(scenario, overrides)
    resolved, trace = api.prepare(spec, scenario.parent, source=str(scenario))
    out_dir = out_dir or safe_run_dir(spec.name, "runs")
    check_run_dir(out_dir)  # refused before the simulation, not after it
    progress = None if quiet or as_json else _Progress(trace.num_requests, trace.duration_s)
    # The requests and timeline tables stream to a spool beside the output directory as
    # the run goes (memory flat in its length), then are published with the rest.
    with spool_beside(out_dir) as spool:
        try:
            result = api.run_resolved(resolved, trace, progress=progress, spool_dir=spool,
                                      replica_jobs=replica_jobs)  # fmt: skip
        finally:
            if progress is not None:
                progress.close()
        if options is not None:
            from infsim.uncertainty.predict import uncertainty_sections

            result.summary.update(
                uncertainty_sections(spec, resolved, result.summary, options, pool)
            )
        if vllm is not None:
            result.summary["from_vllm_args"] = vllm.record(vllm_args)
        result.write(out_dir)
    if not no_report:
        from infsim.report.html_run import write_run_report

        write_run_report(out_dir)
    if as_json:
        click.echo(json.dumps(result.summary, indent=2))
    elif not quiet:
        from infsim.report.console import print_summary
        from infsim.scenario.pools import fleet_label

        console = Console()
        print_summary(
            result.summary,
            f"{spec.name}: {resolved.model.name} on {fleet_label(resolved)}",
            console,
        )
        report = "" if no_report else ", report.html"
        console.print(
            f"[dim]wrote {out_dir}/{{requests,timeline,fleet_timeline}}.parquet, summary.json, "
            f"scenario.resolved.yaml{report}[/dim]"
        )


@main.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the schema to a file instead of stdout.",
)
def schema(out: Path | None) -> None:
    """Print the JSON Schema of scenario files (for editors and validation)."""
    from infsim.scenario.schema import Scenario

    text = json.dumps(Scenario.model_json_schema(), indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")


@main.group()
def catalog() -> None:
    """List built-in models and accelerators."""


@catalog.command("models")
def catalog_models() -> None:
    from infsim.catalog.model import load_model, model_names

    for name in model_names():
        m = load_model(name)
        click.echo(
            f"{m.name:28s} {m.num_params_total / 1e9:7.2f}B params  "
            f"KV {m.kv_bytes_per_token() / 1024:6.1f} KiB/token  ({m.source})"
        )


@catalog.command("gpus")
def catalog_gpus() -> None:
    from infsim.catalog.hardware import gpu_names, load_gpu

    for name in gpu_names():
        g = load_gpu(name)
        click.echo(
            f"{g.name:14s} {g.memory_bytes / 2**30:6.1f} GiB  "
            f"{g.mem_bandwidth_bytes_per_s / 1e12:5.2f} TB/s  "
            f"bf16 {g.flops_per_s('bfloat16') / 1e12:7.1f} TFLOP/s  "
            f"${g.price.on_demand_usd_per_hour:.2f}/GPU-h"
        )


LAZY_COMMANDS = {
    "trace": "infsim.workload.cli:trace_cli",
    "calibrate": "infsim.calibration.cli:calibrate_cli",
    "validate": "infsim.validation.cli:validate_cli",
    "scenarios": "infsim.examples:scenarios_cli",
    "sweep": "infsim.sweep.cli:sweep_cmd",
    "capacity": "infsim.sweep.cli:capacity_cmd",
    "optimize": "infsim.sweep.cli:optimize_cmd",
    "results": "infsim.sweep.cli:results_cmd",
    "report": "infsim.sweep.cli:report_cmd",
    "plan": "infsim.plan.cli:plan_cmd",
    "export": "infsim.report.cli:export_cli",
}
"""Command groups kept in their packages, imported when used (`infsim --version` and
`infsim run` do not load the sweep, calibration and validation layers)."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
