"""`infsim calibrate list|import|report|collect`."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from infsim.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from infsim.scenario.resolve import ResolvedScenario


def _load_importers():
    """The importer registry, with every importer module registered."""
    from infsim.calibration.importers import ImportOptions, import_paths, importers

    for module in ("infsim.calibration.profilers",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:  # optional parts not present in this tree
            if err.name != module:
                raise
    return importers, ImportOptions, import_paths


@click.group("calibrate")
def calibrate_cli() -> None:
    """Import profiler measurements into calibration tables, list them, check their fit."""


@calibrate_cli.command("list")
def list_cmd() -> None:
    """Built-in calibrations (the `calibration:` names a scenario can use)."""
    from infsim.cost.store import builtin_dir, builtin_location, builtin_names, load_rows

    table = Table(header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("device", no_wrap=True)
    for title in ("engine", "rows", "ops", "source"):
        table.add_column(title, overflow="fold")
    for name in builtin_names():
        rows, meta = load_rows(builtin_dir() / name)
        engine = f"{meta.engine} {meta.engine_version}".strip()
        ops = ", ".join(sorted(rows["op"].unique()))
        table.add_row(name, meta.device, engine, f"{len(rows):,}", ops, meta.source)
    console = Console()
    console.print(table)
    console.print(f"built-in calibrations read from {builtin_location()}", soft_wrap=True)


_CALIBRATION_FILES = ("ops.parquet", "meta.yaml")
"""What `calibrate import --force` replaces: written into a temporary sibling and renamed
into place as a whole (`infsim.report.atomic`); a directory holding anything else is
refused."""


@calibrate_cli.command("import")
@click.argument("fmt", metavar="FORMAT")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Calibration name, e.g. h100-vllm-0.19.")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: calibration/<NAME as a safe directory name>).",
)
@click.option("--device", default=None, help="Hardware catalog name of the device measured.")
@click.option("--engine", default=None, help="Engine to keep/label (vllm, sglang, trtllm).")
@click.option("--engine-version", default=None, help="Engine version to keep, e.g. 0.19.0.")
@click.option("--model", default=None, help="Catalog model, for model-specific tables.")
@click.option("--dtype", "dtypes", multiple=True, help="Compute dtype to keep (repeatable).")
@click.option("--force", is_flag=True, help="Replace an existing calibration directory.")
def import_cmd(fmt: str, paths: tuple[Path, ...], name: str, out: Path | None,
               **opts: object) -> None:  # fmt: skip
    """Import FORMAT files (all or nothing) into a calibration table."""
    from infsim.cost.table import CalibrationMeta, to_table, write
    from infsim.report.atomic import check_target, publish_tree
    from infsim.report.paths import safe_run_dir
    from infsim.scenario.host_overhead import default_step_overhead_meta

    force = bool(opts.pop("force"))
    importers, options_cls, import_paths = _load_importers()
    if fmt not in importers.names():
        importers.get(fmt)  # raises the InputError listing the formats
    out = out or safe_run_dir(name, "calibration")  # never outside calibration/
    if (out.exists() or out.is_symlink()) and not force:
        raise InputError(f"{out}: already exists; pass --force to replace it")
    check_target(out, _CALIBRATION_FILES, "calibration")  # before the import's work
    options = options_cls(**{k: v for k, v in opts.items() if k != "dtypes"},
                          dtypes=tuple(opts["dtypes"]))  # fmt: skip
    result = import_paths(fmt, list(paths), options)
    table = to_table(result.frame, ", ".join(map(str, paths)))
    meta_fields = {k: v for k, v in result.meta.items() if k in CalibrationMeta.model_fields}
    if options.device:
        meta_fields["device"] = options.device
    if meta_fields.get("engine") and "step_overhead" not in meta_fields:
        meta_fields["step_overhead"] = default_step_overhead_meta(
            str(meta_fields["engine"]), str(meta_fields.get("engine_version", ""))
        )
    meta = CalibrationMeta(
        name=name,
        importer="infsim calibrate import " + shlex.join(sys.argv[3:] if len(sys.argv) > 3
                                                         else [fmt, *map(str, paths)]),
        provenance=result.provenance,
        **meta_fields,
    )  # fmt: skip
    publish_tree(out, lambda tmp, _step: write(tmp, table, meta),
                 replaceable=_CALIBRATION_FILES, what="calibration")  # fmt: skip
    digest = hashlib.sha256((out / "ops.parquet").read_bytes()).hexdigest()[:12]
    click.echo(f"wrote {out}: {table.num_rows:,} rows from {len(paths)} path(s) ({digest})")


@calibrate_cli.command("report")
@click.argument("calibration")
@click.option(
    "--scenario",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also show which lookups this scenario makes and which fall back.",
)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def report_cmd(calibration: str, scenario: Path | None, overrides: tuple[str, ...],
               as_json: bool) -> None:  # fmt: skip
    """Held-out error per op, coverage, and a scenario's fallbacks to the roofline."""
    from infsim.calibration.fit_quality import report
    from infsim.cost.store import load_rows, resolve_calibration

    directory = resolve_calibration(calibration, Path.cwd())
    rows, meta = load_rows(directory)
    rep = report(rows)
    lookups = _scenario_lookups(scenario, overrides, directory) if scenario else []
    if as_json:
        click.echo(json.dumps({
            "calibration": meta.model_dump(mode="json"),
            "leave_one_out": rep["leave_one_out"].to_dict(orient="records"),
            "coverage": rep["coverage"].to_dict(orient="records"),
            "warnings": rep["warnings"],
            "scenario_lookups": lookups,
        }, indent=2, default=str))  # fmt: skip
        return
    console = Console()
    console.print(f"[bold]{meta.name}[/bold]: {meta.device}, {meta.engine} "
                  f"{meta.engine_version} — {meta.source}")  # fmt: skip
    _print_frame(console, "held-out (leave-one-out) error", rep["leave_one_out"])
    _print_frame(console, "coverage", rep["coverage"])
    for warning in rep["warnings"]:
        console.print(f"[bold red]{warning}[/bold red]")
    if lookups:
        table = Table("op", "shape", "method", "measured", "used", "extrapolated",
                      title="lookups of the scenario", title_justify="left")  # fmt: skip
        for e in lookups:
            method = f"{e['method']} ({e['note']})" if e.get("note") else e["method"]
            table.add_row(e["op"], e["shape"], method, e["measured_range"],
                          e["used_range"], "yes" if e["extrapolated"] else "")  # fmt: skip
        console.print(table)


def _scenario_lookups(scenario: Path, overrides: tuple[str, ...], directory: Path) -> list:
    from infsim import api
    from infsim.cost.factory import build_cost_model
    from infsim.cost.lookup import LookupLog

    spec = api.load_scenario(scenario, (*overrides, f"calibration={directory}"))
    resolved, _ = api.prepare(spec, scenario.parent, source=str(scenario))
    log = LookupLog()
    build_cost_model(resolved.replica(), log)
    return [{**e, "extrapolated": bool(e["extrapolated"])} for e in log.entries]


def _print_frame(console: Console, title: str, frame) -> None:
    table = Table(*map(str, frame.columns), title=title, title_justify="left")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def _refit(scenario: Path, overrides: tuple[str, ...], out: Path | None, op: str,
           fit: Callable[[ResolvedScenario], tuple[pd.DataFrame, dict[Path, int]]],
           roofline_hint: str, command: str) -> tuple[Path, pd.DataFrame]:  # fmt: skip
    """Replace the `op` rows of the scenario's calibration with `fit(resolved without those
    rows)` → (rows, {source path: rows from it}), record provenance and the command in
    meta.yaml, and write the table (to `out`, or in place). Returns (target, rows)."""
    import pandas as pd

    from infsim import api
    from infsim.calibration.importers._common import sha256
    from infsim.cost.table import Provenance, read, to_table, write

    spec = api.load_scenario(scenario, overrides)
    resolved, _ = api.prepare(spec, scenario.parent, source=str(scenario))
    if resolved.calibration_dir is None:
        raise InputError(f"{scenario}: calibration: the scenario uses the roofline; name a "
                         f"calibration {roofline_hint}")  # fmt: skip
    table, meta = read(resolved.calibration_dir)
    ops = table.to_pandas()
    ops = ops[ops["op"] != op].reset_index(drop=True)
    rows, counts = fit(dataclasses.replace(resolved, calibration_rows=ops))
    sources = [str(path) for path in counts]
    merged = to_table(pd.concat([ops, rows], ignore_index=True), sources[0])
    meta = meta.model_copy(update={
        "provenance": (*[p for p in meta.provenance
                         if p.path not in sources and p.op != op],
                       *[Provenance(path=str(path), rows=n, sha256=sha256(path), op=op)
                         for path, n in counts.items()]),
        "notes": (*[n for n in meta.notes if not n.startswith(f"{op}:")],
                  f"{op}: fitted by infsim calibrate {command} --scenario {scenario}"),
    })  # fmt: skip
    target = out or resolved.calibration_dir
    write(target, merged, meta)
    return target, rows


_OUT_HELP = "Write here instead of updating the scenario's calibration in place."


@calibrate_cli.command("overhead")
@click.argument(
    "measured",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--scenario",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The deployment the steps were measured on (its calibration: is used).",
)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=_OUT_HELP)  # fmt: skip
def overhead_cmd(measured: tuple[Path, ...], scenario: Path, overrides: tuple[str, ...],
                 out: Path | None) -> None:  # fmt: skip
    """Fit per-step engine overhead from MEASURED runs and store it as step_overhead rows
    of the calibration. Each MEASURED is a CSV (batch_size, kv_len, step_time_s, optionally
    query_len: new tokens per sequence, > 1 for a prefill step); a closed-loop benchmark
    result with fixed lengths (vllm bench serve --max-concurrency C --save-result
    --save-detailed: its median TPOT is the step at batch C); or any other run with
    per-request start times: an open-loop benchmark or an in-process run's per-request
    timestamps (format vllm-inprocess), fitted by replaying it and regressing each
    request's measured decode time on its replayed steps and their widths. Decode steps fit
    fixed + per sequence; prefill steps add per prefill chunk + per prefill token."""
    import pandas as pd

    from infsim.calibration.overhead import holds_known_steps, overhead_rows, read_steps
    from infsim.calibration.replay_fit import replay_rows
    from infsim.cost.factory import build_cost_model
    from infsim.cost.overhead import fit_overhead

    def fit(bare):
        direct = [path for path in measured if holds_known_steps(path)]
        steps = [read_steps(path) for path in direct]
        cost_model = build_cost_model(bare.replica())
        frames = [overhead_rows(pd.concat(steps, ignore_index=True), cost_model)] if steps else []
        counts = {path: len(s) for path, s in zip(direct, steps, strict=True)}
        for path in measured:
            if path not in counts:
                replayed = replay_rows(path, bare)
                frames.append(replayed)
                counts[path] = len(replayed)
        return pd.concat(frames, ignore_index=True), {p: counts[p] for p in measured}

    target, rows = _refit(scenario, overrides, out, "step_overhead", fit,
                          "whose ops the overhead is the remainder of",
                          f"overhead {' '.join(str(m) for m in measured)}")  # fmt: skip
    fit_text = fit_overhead(rows).describe()
    click.echo(f"wrote {target}: {len(rows)} step_overhead rows; fit {fit_text}")


@calibrate_cli.command("frontend")
@click.argument(
    "benches", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--scenario",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The deployment the benchmarks ran on (its calibration: is used and updated).",
)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=_OUT_HELP)  # fmt: skip
def frontend_cmd(benches: tuple[Path, ...], scenario: Path, overrides: tuple[str, ...],
                 out: Path | None) -> None:  # fmt: skip
    """Fit the front end's per-request latency (HTTP, tokenising, IPC, streaming) from
    BENCHES run with one request in flight (vllm bench serve --max-concurrency 1): measured
    TTFT minus the engine's predicted TTFT, stored as frontend rows of the calibration."""
    from infsim.calibration.frontend import frontend_rows, summary

    target, rows = _refit(scenario, overrides, out, "frontend",
                          lambda bare: frontend_rows(list(benches), bare),
                          "to add the front end to",
                          f"frontend {' '.join(str(b) for b in benches)}")  # fmt: skip
    fixed, per_token = summary(rows)
    click.echo(f"wrote {target}: {len(rows)} frontend rows; fit {fixed * 1e3:.3f} ms + "
               f"{per_token * 1e6:.3f} µs per prompt token")  # fmt: skip


@calibrate_cli.command("collect", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def collect_cmd(args: tuple[str, ...]) -> None:
    """Measure a model's ops on a torch device (needs the `calibrate` extra: torch).

    Arguments go to `python -m infsim.calibration.harness` (see its --help)."""
    try:
        harness = importlib.import_module("infsim.calibration.harness")
    except ModuleNotFoundError as err:
        raise InputError(
            f"calibrate collect needs PyTorch ({err.name} is not installed): "
            "pip install 'infsim[calibrate]' (CPU: pip install torch==2.13.0)"
        ) from None
    sys.exit(harness.main(list(args)))


@calibrate_cli.command("noise")
@click.argument(
    "benches", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def noise_cmd(benches: tuple[Path, ...], as_json: bool) -> None:
    """Estimate the host's speed swings (hardware.speed_noise: cv, correlation_s) from
    BENCHES run with one request in flight (vllm bench serve --max-concurrency 1): the
    spread of per-request TPOT and the correlation of consecutive requests."""
    from infsim.calibration.noise import run_noise, speed_noise

    runs = [run_noise(b) for b in benches]
    cv, correlation_s = speed_noise(runs)
    if as_json:
        click.echo(json.dumps({"cv": cv, "correlation_s": correlation_s,
                               "runs": [r.__dict__ for r in runs]}, indent=1))  # fmt: skip
        return
    for r in runs:
        click.echo(f"{r.source}: {r.num_requests} requests, decode {r.decode_s:.3f} s, "
                   f"TPOT cv {r.tpot_cv:.3f}, lag-1 correlation {r.lag1:+.2f}")  # fmt: skip
    click.echo(f"hardware:\n  speed_noise: {{cv: {cv:.3f}, correlation_s: {correlation_s:.3f}}}")
