"""`infsim export`: a finished run in other tools' formats."""

from __future__ import annotations

import json
from pathlib import Path

import click

from infsim.report.read import read_run
from infsim.workload.output import write_atomically

_RUN = click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))


def _out(default: str):
    return click.option(
        "-o",
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"Output file (default: RUN_DIR/{default}).",
    )


def _write_json(path: Path, data: dict, what: str) -> None:
    text = json.dumps(data, indent=None, separators=(",", ":"), allow_nan=False)
    write_atomically(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), what)


@click.group("export")
def export_cli() -> None:
    """Export a finished run (`infsim run` output directory) for other tools."""


@export_cli.command("vllm-bench")
@_RUN
@_out("vllm_bench_result.json")
def vllm_bench_cmd(run_dir: Path, out: Path | None) -> None:
    """The run's results as `vllm bench serve --save-result --save-detailed` JSON (vLLM's
    keys and units; what infsim cannot give is left out and listed under `infsim`)."""
    from infsim.report.vllm_bench import vllm_bench_result

    run = read_run(run_dir)
    out = out or run_dir / "vllm_bench_result.json"
    _write_json(out, vllm_bench_result(run), "vLLM benchmark result")
    click.echo(f"wrote {out}")


@export_cli.command("perfetto")
@_RUN
@_out("trace.perfetto.json")
@click.option(
    "--max-requests",
    type=click.IntRange(min=1, max=10_000_000),
    default=20_000,
    show_default=True,
    help="Requests (by arrival) in the trace, with the steps until they end.",
)
def perfetto_cmd(run_dir: Path, out: Path | None, max_requests: int) -> None:
    """The run as a Chrome/Perfetto trace (open in https://ui.perfetto.dev): steps per
    replica with batch and KV counters, and each request's waiting, prefill and decode."""
    from infsim.report.perfetto import chrome_trace

    run = read_run(run_dir)
    out = out or run_dir / "trace.perfetto.json"
    export = chrome_trace(run.requests, run.timeline, max_requests)
    _write_json(out, export.trace, "trace")
    note = ""
    if export.cut:
        note = (
            f" (the first {export.num_requests:,} of {run.requests.num_rows:,} requests and "
            f"the {export.num_steps:,} steps until they end; raise --max-requests for more)"
        )
    click.echo(f"wrote {out}{note}")
