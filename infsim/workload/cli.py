"""`infsim trace ...`: inspect, convert and synthesise traces.

The main CLI mounts this group lazily (`infsim.cli.LAZY_COMMANDS`) and turns `InputError` into
exit code 2; these commands only parse arguments, call the workload API and write output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np

from infsim.errors import InputError
from infsim.limits import SCALE, SECONDS
from infsim.textio import load_yaml, read_text
from infsim.workload.columns import shown
from infsim.workload.formats import trace_formats
from infsim.workload.formats_csv import MAPPED_OPTIONAL, MAPPED_REQUIRED, TIME_UNITS_S
from infsim.workload.loaders import format_names, load_trace
from infsim.workload.spec import SyntheticSource, generate, parse_model
from infsim.workload.trace import Trace

FORMAT_CHOICE = click.Choice(["auto", *format_names()])


def _load(path: str, fmt: str, options: dict) -> Trace:
    return load_trace(
        path,
        fmt,
        drop_zero_output=options["drop_zero_output"],
        drop_failed=options["drop_failed"],
        columns=_mapping(options["columns"]),
        time_unit=options["time_unit"],
    )


MAPPED = (*MAPPED_REQUIRED, *MAPPED_OPTIONAL)


def _mapping(text: str | None) -> dict[str, str] | None:
    """--columns arrival_s=ts,num_prompt_tokens=in,num_output_tokens=out → a mapping."""
    if text is None:
        return None
    mapping: dict[str, str] = {}
    for item in text.split(","):
        name, eq, column = (part.strip() for part in item.partition("="))
        if not eq or not column or name not in MAPPED:
            raise InputError(
                f"--columns {text!r}: {item.strip()!r} is not NAME=COLUMN with NAME one of "
                f"{', '.join(MAPPED)}"
            )
        mapping[name] = column
    return mapping


def _write(trace: Trace, out: Path, to: str | None) -> None:
    kind = to or {".parquet": "parquet", ".csv": "csv"}.get(out.suffix.lower())
    if kind is None:
        raise InputError(f"{out}: cannot tell the output format; use .parquet/.csv or --to")
    if kind == "parquet":
        trace.to_parquet(out)
    else:
        trace.to_csv(out)


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=summary["source"], show_header=False)
    for key, value in summary.items():
        if isinstance(value, dict):
            value = "  ".join(f"{k} {v:,.1f}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:,.3f}"
        elif isinstance(value, list):
            value = "\n".join(value) or "-"
        table.add_row(key, str(value))
    Console().print(table)


@click.group("trace")
def trace_cli() -> None:
    """Inspect, convert and generate request traces."""


drop_options = [
    click.option("--drop-zero-output", is_flag=True, help="Drop rows with 0 output tokens."),
    click.option("--drop-failed", is_flag=True, help="vllm-bench: drop failed requests."),
    click.option(
        "--columns",
        default=None,
        metavar="NAME=COL,…",
        help="Format csv: arrival_s=COL,num_prompt_tokens=COL,num_output_tokens=COL"
        "[,session_id=COL] (implies --format csv).",
    ),
    click.option(
        "--time-unit",
        type=click.Choice(list(TIME_UNITS_S)),
        default="s",
        show_default=True,
        help="Format csv: unit of the arrival column.",
    ),
]


def _with_drop_options(command):
    for option in reversed(drop_options):
        command = option(command)
    return command


@trace_cli.command("formats")
def formats() -> None:
    """List the trace formats `--format` accepts (auto-detection picks one of them)."""
    for name in format_names():
        click.echo(f"{name:14} {trace_formats.get(name).description}")


@trace_cli.command("info")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_with_drop_options
def info(path: str, fmt: str, as_json: bool, **options) -> None:
    """Summarise the trace at PATH."""
    summary = _load(path, fmt, options).summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)


@trace_cli.command("convert")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="auto", show_default=True)
@click.option("--to", type=click.Choice(["parquet", "csv"]), help="Default: from OUT's suffix.")
@click.option("--time-scale", type=float, help="Multiply inter-arrival times.")
@click.option("--rate-scale", type=float, help="Multiply the arrival rate.")
@click.option("--start-s", type=float, help="Keep arrivals >= this (re-based to 0).")
@click.option("--end-s", type=float, help="Keep arrivals < this (source seconds).")
@click.option("--max-requests", type=int, help="Keep at most this many requests.")
@_with_drop_options
def convert(src: str, out: Path, fmt: str, to: str | None, **kwargs) -> None:
    """Convert SRC to the canonical table OUT; window first, then scale."""
    if kwargs["time_scale"] is not None and kwargs["rate_scale"] is not None:
        raise InputError("give --time-scale or --rate-scale, not both")
    _check_window(kwargs)
    trace = _load(src, fmt, kwargs)
    trace = trace.slice(kwargs["start_s"], kwargs["end_s"], kwargs["max_requests"])
    if kwargs["time_scale"] is not None:
        trace = trace.scale_time(kwargs["time_scale"])
    if kwargs["rate_scale"] is not None:
        trace = trace.scale_rate(kwargs["rate_scale"])
    _write(trace, out, to)
    click.echo(f"wrote {trace.num_requests} requests to {out}")


def _check_window(options: dict) -> None:
    """--start-s, --end-s, --time-scale, --rate-scale: finite and within the workload bounds
    (`limits.SECONDS`, `limits.SCALE`), as in a scenario's `workload:` section."""
    bounds = {"start_s": (SECONDS, 0.0), "end_s": (SECONDS, 0.0)}
    bounds |= {"time_scale": (SCALE, None), "rate_scale": (SCALE, None)}
    for name, (limit, minimum) in bounds.items():
        value = options[name]
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if not math.isfinite(value) or (minimum is None and value <= 0) or value < (minimum or 0):
            least = f">= {minimum}" if minimum is not None else "> 0"
            raise InputError(f"{flag} is {value}; expected a finite number {least}")
        limit.check(value, flag)


_LENGTH_HELP = "expected N, uniform:MIN:MAX or lognormal:MEAN:SIGMA:MAX (tokens)"


def _length_spec(text: str, option: str) -> dict:
    """`N` (fixed), `uniform:MIN:MAX`, `lognormal:MEAN:SIGMA:MAX` as a `LengthSpec` mapping
    (validated with the scenario schema's bounds)."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return {"kind": "fixed", "value": int(parts[0])}
        if parts[0] == "uniform" and len(parts) == 3:
            return {"kind": "uniform", "min": int(parts[1]), "max": int(parts[2])}
        if parts[0] == "lognormal" and len(parts) == 4:
            mean, sigma, most = float(parts[1]), float(parts[2]), int(parts[3])
            return {"kind": "lognormal", "mean": mean, "sigma": sigma, "min": 1, "max": most}
    except ValueError:
        pass
    raise InputError(f"{option} {shown(text)}: {_LENGTH_HELP}")


def _synth_from_options(options: dict, rng: np.random.Generator) -> Trace:
    """The --num-requests, --rate, ... options as a `synthetic:` block, validated by the
    same schema (bounds included) as a scenario's."""
    arrival = {"kind": options["arrival"], "rate_per_s": options["rate_per_s"]}
    if options["arrival"] == "gamma":
        arrival["cv"] = options["cv"]
    elif options["cv"] != 1.0:
        raise InputError(f"--cv {options['cv']} applies to --arrival gamma only")
    data = {
        "num_requests": options["num_requests"],
        "arrival": arrival,
        "prompt_tokens": _length_spec(options["prompt_tokens"], "--prompt-tokens"),
        "output_tokens": _length_spec(options["output_tokens"], "--output-tokens"),
    }
    spec = parse_model(SyntheticSource, data, source="infsim trace synth", section="options")
    return generate(spec, base_dir=Path("."), rng=rng)


def _synth_from_spec(spec_path: Path, rng: np.random.Generator) -> Trace:
    data = load_yaml(read_text(spec_path, "synthetic spec file"), str(spec_path))
    if not isinstance(data, dict) or "synthetic" not in data:
        raise InputError(f"{spec_path}: expected a mapping with a 'synthetic:' block")
    spec = parse_model(
        SyntheticSource, data["synthetic"], source=str(spec_path), section="synthetic"
    )
    return generate(spec, base_dir=spec_path.parent, rng=rng)


@trace_cli.command("synth")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file with a `synthetic:` block (overrides the options).")  # fmt: skip
@click.option("--num-requests", type=int, default=1000, show_default=True)
@click.option("--rate", "rate_per_s", type=float, default=1.0, show_default=True, help="req/s")
@click.option("--arrival", type=click.Choice(["poisson", "gamma"]), default="poisson")
@click.option("--cv", type=float, default=1.0, show_default=True, help="Gamma gap CV.")
@click.option("--prompt-tokens", default="lognormal:1000:0.8:8192", show_default=True,
              help="N | uniform:MIN:MAX | lognormal:MEAN:SIGMA:MAX")  # fmt: skip
@click.option("--output-tokens", default="200", show_default=True)
@click.option("--to", type=click.Choice(["parquet", "csv"]), help="Default: from OUT's suffix.")
def synth(out: Path, seed: int, spec_path: Path | None, **kwargs) -> None:
    """Generate a synthetic trace into OUT (deterministic for a given --seed)."""
    rng = np.random.default_rng(seed)
    if spec_path is not None:
        trace = _synth_from_spec(spec_path, rng)
    else:
        trace = _synth_from_options(kwargs, rng)
    _write(trace, out, kwargs["to"])
    click.echo(f"wrote {trace.num_requests} requests to {out}")


@trace_cli.command("export")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["mooncake", "vllm-custom"]), required=True,
              help="mooncake: JSONL for vllm bench --dataset-name timed_trace; vllm-custom: "
                   "JSONL for --dataset-name custom (best-effort prompt text).")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a field of a scenario SRC (repeatable).")  # fmt: skip
@click.option("--input-format", "input_fmt", type=FORMAT_CHOICE, default="auto",
              show_default=True, help="Format of a trace SRC.")  # fmt: skip
@click.option("--hash-block-size", type=int, default=None,
              help="Tokens per hash id when SRC has none (default 512, as Mooncake).")  # fmt: skip
def export(src: Path, out: Path, fmt: str, overrides: tuple[str, ...], input_fmt: str,
           hash_block_size: int | None) -> None:  # fmt: skip
    """Write the workload of SRC (a scenario YAML, built with its seed, or a trace file) to
    OUT for a live replay with `vllm bench serve`."""
    from infsim.workload.export import export_trace

    if hash_block_size is not None and hash_block_size < 1:
        raise InputError(f"--hash-block-size is {hash_block_size}; must be >= 1")
    trace = load_workload(src, overrides, input_fmt)
    for note in export_trace(trace, out, fmt, hash_block_size):
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {trace.num_requests} requests to {out}")


def load_workload(path: Path, overrides: tuple[str, ...] = (), fmt: str = "auto") -> Trace:
    """The workload of a scenario YAML (built with its seed) or a trace file."""
    if path.suffix.lower() in (".yaml", ".yml"):
        from infsim.scenario.load import load_scenario
        from infsim.workload.spec import build_trace

        scenario = load_scenario(path, overrides)
        rng = np.random.default_rng(scenario.seed)
        return build_trace(scenario.workload, base_dir=path.parent, rng=rng)
    if overrides:
        raise InputError(f"{path}: --set applies to scenario files (.yaml), not to a trace")
    return load_trace(path, fmt)
