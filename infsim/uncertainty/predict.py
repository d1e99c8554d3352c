"""Intervals and the cliff indicator for one scenario: build the tasks, run them on an
executor, and turn their rows into summary.json's `intervals` and `sensitivity` sections.

The executor is passed in (anything with the sweep executors' `map(fn, tasks)`; serial
when None), so this package does not depend on `infsim.sweep` and the sweep's capacity
search can use it. The base run itself is the caller's (`api.run_resolved`): its summary
holds the point estimates, which the intervals sit around.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infsim.errors import InputError
from infsim.uncertainty.intervals import flatten_numbers, interval_section
from infsim.uncertainty.model_error import ModelError, for_resolved
from infsim.uncertainty.replicate import SECTIONS, ReplicationTask, run_replication
from infsim.uncertainty.sensitivity import PERTURBATIONS, STEP, sensitivity_section
from infsim.uncertainty.sources import FITTED, SOURCES, class_sigmas, methods

MAX_REPLICATIONS = 1000


@dataclass(frozen=True)
class IntervalOptions:
    """`num_replications` ≥ 2 (0: no intervals); `level` in (0, 1); `sensitivity`: the
    four cliff runs."""

    num_replications: int = 0
    level: float = 0.9
    sources: tuple[str, ...] = SOURCES
    sensitivity: bool = False
    model_error: ModelError | None = None
    """σ of the fitted sources (`model_error`, `drift`); None: the shipped fit for the
    scenario's device kind (`model_error.json`). The coverage check passes leave-out fits."""

    def check(self) -> None:
        n = self.num_replications
        if n != 0 and not 2 <= n <= MAX_REPLICATIONS:
            raise InputError(
                f"--intervals {n}: the number of replications must be 0 (off) or 2 to "
                f"{MAX_REPLICATIONS} (20 is a good start; 3 gives a rough interval)"
            )
        if not 0.5 <= self.level < 1:
            raise InputError(
                f"--interval-level {self.level}: allowed a level from 0.5 to below 1, "
                "e.g. 0.9 for a 90 % interval"
            )


class _Serial:
    def map(self, fn: Any, tasks: Iterable[Any]) -> Any:
        for task in tasks:
            yield task, fn(task)


def plan_tasks(
    scenario: Any,
    base_dir: Path | str,
    source: str,
    options: IntervalOptions,
    sigmas: Any,
    error: ModelError | None = None,
) -> list[ReplicationTask]:
    """The replications, then (with `options.sensitivity`) the four cliff runs."""
    common = {"scenario": scenario, "base_dir": str(base_dir), "source": source,
              "sources": options.sources, "sigmas": sigmas, "model_error": error}  # fmt: skip
    tasks = [ReplicationTask(i, **common) for i in range(options.num_replications)]
    if options.sensitivity:
        for what in PERTURBATIONS:
            for sign, factor in (("minus", 1 - STEP), ("plus", 1 + STEP)):
                tasks.append(ReplicationTask(-1, **common, variant=f"{what}_{sign}",
                                             factor=factor))  # fmt: skip
    return tasks


def uncertainty_sections(
    scenario: Any,
    resolved: Any,
    base_summary: Mapping[str, Any],
    options: IntervalOptions,
    executor: Any = None,
) -> dict[str, Any]:
    """{"intervals": ..., "sensitivity": ...} (each only when asked for) for the base run
    of `scenario` (as loaded; `resolved`: as `api.prepare` resolved it) whose summary is
    `base_summary`. Each task re-resolves the loaded scenario, as the base run did."""
    options.check()
    moe = bool(getattr(resolved.model, "num_experts", 0))
    sigmas = class_sigmas(resolved.calibration_rows, moe)
    error = None
    if set(FITTED) & set(options.sources):
        error = options.model_error or for_resolved(resolved)
    source = str(scenario.source_path or "scenario")
    tasks = plan_tasks(scenario, resolved.base_dir, source, options, sigmas, error)
    rows: dict[int, dict[str, Any]] = {}
    variants: dict[str, dict[str, Any]] = {}
    for task, row in (executor or _Serial()).map(run_replication, tasks):
        if task.variant is None:
            rows[task.index] = row
        else:
            variants[task.variant] = row
    out: dict[str, Any] = {}
    if options.num_replications:
        out["intervals"] = intervals_from_rows(
            [rows[i] for i in sorted(rows)], base_summary, options, resolved, sigmas, error
        )
    if options.sensitivity:
        perturbed = {v: _latency(r) for v, r in variants.items() if r.get("status") == "ok"}
        out["sensitivity"] = sensitivity_section(base_summary["latency_s"], perturbed)
    return out


def intervals_from_rows(
    rows: list[Mapping[str, Any]],
    base_summary: Mapping[str, Any],
    options: IntervalOptions,
    resolved: Any,
    sigmas: Any,
    error: ModelError | None = None,
) -> dict[str, Any]:
    """summary.json's `intervals`: one leaf per numeric key of the base summary's
    latency, throughput, cost and SLO sections, plus the sources and their methods."""
    ok = [r for r in rows if r.get("status") == "ok"]
    keys = list(flatten_numbers(base_summary, SECTIONS))
    section = interval_section(ok, keys, options.level)
    scenario = resolved.scenario
    section["level"] = options.level
    section["num_replications"] = options.num_replications
    section["num_failed"] = len(rows) - len(ok)
    section["method"] = (
        "prediction interval for one more run from the replications: exp(mean ± t·sd·√(1+1/N)) "
        "of the log values (t: Student, N−1 dof); the point estimate is the base run"
    )
    section["sources"] = methods(
        options.sources,
        scenario.workload.synthetic is not None,
        scenario.hardware.speed_noise,
        sigmas,
        error,
    )
    return section


def _latency(row: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """`latency_s` of a flat row, nested again (metric → stat → value)."""
    out: dict[str, dict[str, float]] = {}
    for key, value in row.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "latency_s":
            out.setdefault(parts[1], {})[parts[2]] = value
    return out
