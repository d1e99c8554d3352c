"""`infsim validate BENCH --scenario S.yaml`: parse, call `validate`, print. No logic."""

from __future__ import annotations

import json
from pathlib import Path

import click

from infsim.validation.compare import ValidationResult
from infsim.validation.formats import format_names
from infsim.validation.measured import THROUGHPUT_KEY


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if key == THROUGHPUT_KEY else f"{value * 1e3:,.2f}"


def print_result(result: ValidationResult) -> None:
    """Rich table: one row per compared metric × stat (ms; throughput tok/s), then notes."""
    from rich.console import Console
    from rich.table import Table

    run = result.run
    replayed = "replayed" if run["replayed"] else "NOT replayed (scenario workload)"
    table = Table(
        title=f"{run['source']} ({run['format']}, {replayed}) vs "
        f"{run['model_simulated']} on {run['deployment']}"
    )
    for header in ("metric", "stat", "measured", "predicted", "error %"):
        table.add_column(header, justify="left" if header in ("metric", "stat") else "right")
    for key, item in result.metrics.items():
        metric, stat = (key, "") if key == THROUGHPUT_KEY else key.rsplit("_", 1)
        unit = "tok/s" if key == THROUGHPUT_KEY else "ms"
        error = "-" if item.error_pct is None else f"{item.error_pct:+.1f}"
        table.add_row(
            f"{metric} ({unit})", stat, _fmt(key, item.measured), _fmt(key, item.predicted), error
        )
    console = Console()
    console.print(table)
    median = result.median_abs_error_pct
    console.print(
        f"median absolute error: {'-' if median is None else f'{median:.1f}%'} over "
        f"{len(result.metrics)} values; {run['num_requests_simulated']} requests "
        f"simulated"
    )
    for note in run["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")


@click.command("validate")
@click.argument("bench", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--scenario",
    "scenario_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scenario YAML.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a scenario field (repeatable), e.g. model=llama-3.1-8b.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *format_names()]),
    default="auto",
    show_default=True,
    help="Benchmark file format.",
)
@click.option(
    "--run",
    "run_index",
    type=int,
    default=None,
    help="0-based run of a file holding several (SGLang JSONL, GuideLLM sweeps).",
)
@click.option(
    "--prefix-trace",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The trace file a timed-trace benchmark replayed: its prefix hash ids are used.",
)
@click.option(
    "--prefix-block-tokens",
    type=int,
    default=None,
    help="Tokens per hash id of --prefix-trace (default: its format's, Mooncake 512).",
)
@click.option(
    "--allow-model-mismatch",
    is_flag=True,
    help="Compare even when the benchmark names another model than the scenario.",
)
def validate_cli(  # noqa: PLR0913  (one parameter per command-line option)
    bench: Path,
    scenario_path: Path,
    overrides: tuple[str, ...],
    as_json: bool,
    fmt: str,
    run_index: int | None,
    prefix_trace: Path | None,
    prefix_block_tokens: int | None,
    allow_model_mismatch: bool,
) -> None:
    """Replay the live benchmark BENCH through the scenario's deployment and compare
    predicted with measured TTFT, TPOT, ITL, E2E (mean/p50/p90/p99) and output tokens/s.

    JSON keys: `<metric>_<stat>` (metric ttft|tpot|itl|e2e, stat mean|p50|p90|p99) in
    seconds, and `output_tokens_per_s`; error % = (predicted - measured) / measured * 100.
    Files without per-request start times are not replayed (the scenario's workload
    stands in, and the output says so).
    """
    from infsim.scenario.load import load_scenario
    from infsim.validation.validate import validate

    scenario = load_scenario(scenario_path, overrides)
    prefix = None
    if prefix_trace is not None:
        from infsim.workload.loaders import load_trace

        prefix = load_trace(prefix_trace, hash_block_size_tokens=prefix_block_tokens)
    result = validate(
        bench,
        scenario,
        scenario_path.parent,
        fmt,
        run_index=run_index,
        allow_model_mismatch=allow_model_mismatch,
        prefix_trace=prefix,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_result(result)
