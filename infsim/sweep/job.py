"""`infsim sweep`: base scenario + axes → validated points → store, with a manifest.

The base scenario may carry the axes itself in a `sweep:` block (taken out before the
scenario is validated), or they come from `--axes FILE`; not both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infsim import __version__
from infsim.errors import InputError
from infsim.scenario.load import apply_override, read_yaml_mapping
from infsim.sweep.executors import Executor
from infsim.sweep.points import PointContext, PointTask, SkippedPoint, plan
from infsim.sweep.runner import Outcome, Progress, run_tasks
from infsim.sweep.spec import SweepSpec, parse_sweep, read_axes_file
from infsim.sweep.store import ResultStore, base_digest


def load_base(
    scenario: Path, overrides: tuple[str, ...] | list[str] = ()
) -> tuple[PointContext, dict[str, Any] | None]:
    """The base scenario as a raw mapping (with `--set` overrides applied) and its
    `sweep:` block, if any."""
    raw = read_yaml_mapping(scenario)
    block = raw.pop("sweep", None)
    for item in overrides:
        apply_override(raw, item)
    return PointContext(base_raw=raw, base_dir=scenario.parent, source=str(scenario)), block


def sweep_spec(scenario: Path, block: Any, axes: Path | None) -> SweepSpec:
    if axes is not None and block is not None:
        raise InputError(
            f"{scenario}: has a sweep: block and --axes {axes} was given; use one of them"
        )
    if axes is not None:
        return read_axes_file(axes)
    if block is None:
        raise InputError(
            f"{scenario}: no axes: give --axes AXES.yaml or a sweep: block in the scenario "
            "(axes: {dotted.path: [values]}, mode: grid|zip, constraints: [...])"
        )
    return parse_sweep(block, f"{scenario}: sweep")


@dataclass(frozen=True)
class SweepPlan:
    tasks: list[PointTask]
    skipped: list[SkippedPoint]


def plan_sweep(
    ctx: PointContext, spec: SweepSpec, axes_source: str, max_points: int | None = None
) -> SweepPlan:
    tasks, skipped = plan(dataclasses.replace(ctx), spec, axes_source, max_points)
    return SweepPlan(tasks, skipped)


def manifest(ctx: PointContext, spec: SweepSpec, sweep_plan: SweepPlan) -> dict[str, Any]:
    return {
        "kind": "sweep",
        "scenario": ctx.source,
        "base_sha256": base_digest(ctx.base_raw),
        "infsim_version": __version__,
        "axes": spec.model_dump(mode="json"),
        "points": [
            {"index": t.index, "key": t.key, "overrides": t.overrides} for t in sweep_plan.tasks
        ],
        "skipped": [dataclasses.asdict(s) for s in sweep_plan.skipped],
    }


def run_sweep(  # noqa: PLR0913
    ctx: PointContext,
    spec: SweepSpec,
    store: ResultStore,
    executor: Executor | None = None,
    progress: Progress | None = None,
    *,
    axes_source: str = "axes",
    retry_failed: bool = False,
    force: bool = False,
    max_points: int | None = None,
) -> tuple[SweepPlan, Outcome]:
    """Plan (validating every point first), claim the directory (one job at a time; a
    sweep that would hide another job's results is refused unless `force`), write the
    manifest, run what is not stored."""
    sweep_plan = plan_sweep(ctx, spec, axes_source, max_points)
    job = manifest(ctx, spec, sweep_plan)
    with store.lock():
        store.claim(job, force=force)
        store.write_manifest(job)
        outcome = run_tasks(sweep_plan.tasks, store, executor, progress, retry_failed=retry_failed)
    return sweep_plan, outcome
