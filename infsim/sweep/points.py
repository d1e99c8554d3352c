"""Axes → points → validated, resolved, keyed tasks. Pure but for reading catalog files.

A point is the base scenario plus overrides (dotted path → value). Every point is
validated against the schema before anything runs (a bad value is an `InputError` naming
the axis and value); constraints and the catalogs' feasibility checks then skip points
that cannot run. Its key is the sha256 of the canonical resolved scenario (sorted JSON,
`name`/`description` left out), the resolved model and GPU specs, the content of every
file the scenario names (trace, calibration table) and the infsim version: equal keys
mean equal results, so the store can skip them.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infsim import __version__
from infsim.errors import InputError
from infsim.scenario.load import apply_override, validate_scenario
from infsim.scenario.resolve import ResolvedScenario, resolve
from infsim.scenario.schema import Scenario
from infsim.sweep.expr import Expression
from infsim.sweep.spec import SweepSpec

Overrides = dict[str, Any]


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point (plain data, picklable, no handles)."""

    index: int
    key: str
    overrides: Overrides
    raw: dict[str, Any]
    base_dir: str
    source: str


@dataclass(frozen=True)
class SkippedPoint:
    index: int
    overrides: Overrides
    reason: str


def iter_points(spec: SweepSpec) -> Iterator[Overrides]:
    """The points of the axes, in order, one at a time: grid = cartesian product with the
    last axis varying fastest; zip = the i-th value of every axis."""
    paths = list(spec.axes)
    columns = [spec.axes[p] for p in paths]
    combos = zip(*columns, strict=True) if spec.mode == "zip" else itertools.product(*columns)
    for combo in combos:
        yield dict(zip(paths, combo, strict=True))


def expand(spec: SweepSpec) -> list[Overrides]:
    """All points of the axes as a list (see `iter_points`)."""
    return list(iter_points(spec))


def describe(overrides: Overrides) -> str:
    return ", ".join(f"{p}={v!r}" for p, v in overrides.items()) or "(base scenario)"


def apply_overrides(base_raw: dict[str, Any], overrides: Overrides, source: str) -> dict[str, Any]:
    raw = copy.deepcopy(base_raw)
    for path, value in overrides.items():
        try:
            apply_override(raw, f"{path}={json.dumps(value)}")
        except InputError as err:
            raise InputError(f"{source}: axis {path}: {err}") from None
    return raw


def validate_point(raw: dict[str, Any], overrides: Overrides, index: int, source: str) -> Scenario:
    try:
        return validate_scenario(raw, source)
    except InputError as err:
        raise InputError(f"point {index} ({describe(overrides)}): {err}") from None


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings → {dotted.path: leaf}."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def failed_constraint(scenario: Scenario, constraints: list[Expression]) -> Expression | None:
    names = flatten(scenario.model_dump(mode="json"))
    for expr in constraints:
        if not expr.evaluate(names):
            return expr
    return None


def _file_digest(path: Path) -> str | None:
    """sha256 of the file's content, read in chunks (traces can be gigabytes); None when
    there is no such file, and the reason when it cannot be read (the run will say more)."""
    digest = hashlib.sha256()
    try:
        if not path.is_file():  # also keeps FIFOs and devices from being read
            return None
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as err:
        return f"unreadable: {err.strerror or type(err).__name__}"
    return digest.hexdigest()


def _named_files(data: Any, base_dir: Path) -> dict[str, str | None]:
    """Content hashes of every `path:` string in the scenario (trace files and the like)."""
    found: dict[str, str | None] = {}
    for dotted, value in flatten(data).items():
        if dotted.split(".")[-1] == "path" and isinstance(value, str):
            p = Path(value)
            found[dotted] = _file_digest(p if p.is_absolute() else base_dir / p)
    return found


def _plain(obj: Any) -> Any:
    """Dataclasses, mappings and sequences → JSON-able data (for hashing catalog specs)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = [_plain(v) for v in obj]
        return sorted(items, key=repr) if isinstance(obj, set | frozenset) else items
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def point_key(resolved: ResolvedScenario) -> str:
    scenario = resolved.scenario.model_dump(mode="json", exclude={"name", "description"})
    calibration = None
    if resolved.calibration_dir is not None:
        calibration = {
            name: _file_digest(resolved.calibration_dir / name)
            for name in ("ops.parquet", "meta.yaml")
        }
    canonical = {
        "infsim_version": __version__,
        "scenario": scenario,
        "model": _plain(resolved.model),
        "gpu": _plain(resolved.gpu),
        "calibration": calibration,
        "files": _named_files(scenario, resolved.base_dir),
    }
    text = json.dumps(canonical, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PointContext:
    """The base scenario and where it came from, shared by all points of a job."""

    base_raw: dict[str, Any]
    base_dir: Path
    source: str
    skip_infeasible: bool = True


def make_point(
    ctx: PointContext,
    overrides: Overrides,
    index: int,
    constraints: tuple[Expression, ...] | list[Expression] = (),
) -> PointTask | SkippedPoint:
    """Validate (errors raise), check constraints and feasibility (skip), and key a point."""
    raw = apply_overrides(ctx.base_raw, overrides, ctx.source)
    scenario = validate_point(raw, overrides, index, ctx.source)
    failed = failed_constraint(scenario, list(constraints))
    if failed is not None:
        return SkippedPoint(index, overrides, f"constraint {failed.text!r} is false")
    try:
        resolved = resolve(scenario, ctx.base_dir, ctx.source)
    except InputError as err:
        if not ctx.skip_infeasible:
            raise InputError(f"point {index} ({describe(overrides)}): {err}") from None
        return SkippedPoint(index, overrides, f"infeasible: {err}")
    return PointTask(
        index=index,
        key=point_key(resolved),
        overrides=overrides,
        raw=raw,
        base_dir=str(ctx.base_dir),
        source=ctx.source,
    )


def plan(
    ctx: PointContext, spec: SweepSpec, source: str, max_points: int | None = None
) -> tuple[list[PointTask], list[SkippedPoint]]:
    """All points of a sweep, validated before anything runs; a sweep of more than
    `max_points` (default `spec.MAX_POINTS`) is refused before any point is built."""
    spec.check_size(source, max_points)
    constraints = [
        Expression(text, f"{source}: constraints[{i}]") for i, text in enumerate(spec.constraints)
    ]
    ctx = dataclasses.replace(ctx, skip_infeasible=spec.skip_infeasible)
    tasks: list[PointTask] = []
    skipped: list[SkippedPoint] = []
    for index, overrides in enumerate(iter_points(spec)):
        point = make_point(ctx, overrides, index, constraints)
        (skipped if isinstance(point, SkippedPoint) else tasks).append(point)
    return tasks, skipped
