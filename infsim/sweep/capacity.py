"""`infsim capacity`: the highest arrival rate at which one configuration meets the SLO.

The rate is scaled through `workload.rate_scale` (the trace's own arrival times divided
by the scale), so the request mix stays the same and only the load changes. Each probe
is a point in the result store, so a killed search re-runs its finished probes
instantly. The bisection itself is `search.bisect_capacity`.

With `slo.confidence` set in the scenario, a probe meets the SLO only when its prediction
interval at that level does (`SLOTarget.met_with_confidence`): each probe also runs
`num_replications` replications over every source of variation (`infsim.uncertainty`),
stored as points of their own under `<out>/replications/` (so a resumed search reuses
them too, and `infsim results` on the directory still lists the probes alone;
`sweep/confidence.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from infsim.errors import InputError
from infsim.sweep.confidence import CONFIDENCE_REPLICATIONS, Confidence
from infsim.sweep.executors import Executor
from infsim.sweep.points import PointContext, PointTask, SkippedPoint, make_point
from infsim.sweep.runner import Progress, run_tasks
from infsim.sweep.search import CapacityResult, SLOTarget, bisect_capacity
from infsim.sweep.store import ResultStore, base_digest

RATE_PATH = "workload.rate_scale"


@dataclass(frozen=True)
class CapacityReport:
    result: CapacityResult
    base_rate_per_s: float
    probes: list[dict[str, Any]]  # each: rate_scale, key, met, and the stored row

    @property
    def capacity_rate_per_s(self) -> float:
        return self.result.scale * self.base_rate_per_s


def base_rate_per_s(ctx: PointContext) -> float:
    """Offered arrival rate of the base scenario's trace (requests / arrival span)."""
    from infsim.api import prepare
    from infsim.scenario.load import validate_scenario

    scenario = validate_scenario(ctx.base_raw, ctx.source)
    if scenario.workload.time_scale is not None:
        raise InputError(
            f"{ctx.source}: workload.time_scale: infsim capacity scales the arrival rate "
            "through workload.rate_scale; remove time_scale (or express it as rate_scale)"
        )
    _, trace = prepare(scenario, ctx.base_dir, ctx.source)
    if trace.num_requests < 2 or trace.duration_s <= 0:
        raise InputError(f"{ctx.source}: workload: capacity needs at least two arrivals")
    return trace.num_requests / trace.duration_s


def find_capacity(
    ctx: PointContext,
    target: SLOTarget,
    store: ResultStore,
    executor: Executor | None = None,
    *,
    rel_tol: float = 0.02,
    progress: Progress | None = None,
    force: bool = False,
    num_replications: int = CONFIDENCE_REPLICATIONS,
) -> CapacityReport:
    """Bisect the capacity, holding the store's writer lock; a directory holding another
    job's results is refused unless `force` (see `ResultStore.claim`). With
    `slo.confidence` in the scenario, each probe runs `num_replications` replications."""
    rate = base_rate_per_s(ctx)  # checks the workload first; includes its own rate_scale
    confidence = Confidence.of(ctx, num_replications, store, executor, progress)
    with store.lock():
        store.claim(_manifest(ctx, target, [], rel_tol), force=force)
        return _bisect(ctx, target, store, executor, rel_tol, progress, rate, confidence)


def absolute_rate_scale(ctx: PointContext, scale: float) -> float:
    """The `workload.rate_scale` a probe at search `scale` runs with: the scale times the
    scenario's own rate_scale (1 when it sets none)."""
    own = (ctx.base_raw.get("workload") or {}).get("rate_scale") or 1.0
    return float(np.round(scale * own, 12))


def _bisect(
    ctx: PointContext,
    target: SLOTarget,
    store: ResultStore,
    executor: Executor | None,
    rel_tol: float,
    progress: Progress | None,
    rate: float,
    confidence: Confidence | None = None,
) -> CapacityReport:
    ctx = dataclasses.replace(ctx, skip_infeasible=False)
    probes: list[dict[str, Any]] = []

    def meets(scale: float) -> bool:
        rate_scale = absolute_rate_scale(ctx, scale)
        point = make_point(ctx, {RATE_PATH: rate_scale}, len(probes))
        if isinstance(point, SkippedPoint):  # not reached: skip_infeasible=False raises
            raise InputError(f"{ctx.source}: {point.reason}")
        run_tasks([point], store, executor, progress)
        row = store.read(point.key)
        if confidence is None:
            met = target.met(row)
        else:
            met = target.met(confidence.bounded(target, row, confidence.replicate([point])[0]))
        probes.append({"scale": scale, "rate_scale": rate_scale, "met": met, "task": point})
        _write_manifest(store, ctx, target, probes, rel_tol)
        return met

    result = bisect_capacity(meets, rel_tol=rel_tol)
    report = CapacityReport(result, rate, probes)
    _write_manifest(store, ctx, target, probes, rel_tol, report)
    return report


def _write_manifest(
    store: ResultStore,
    ctx: PointContext,
    target: SLOTarget,
    probes: list[dict[str, Any]],
    rel_tol: float,
    report: CapacityReport | None = None,
) -> None:
    store.write_manifest(_manifest(ctx, target, probes, rel_tol, report))


def _manifest(
    ctx: PointContext,
    target: SLOTarget,
    probes: list[dict[str, Any]],
    rel_tol: float,
    report: CapacityReport | None = None,
) -> dict[str, Any]:
    tasks: list[PointTask] = [p["task"] for p in probes]
    manifest: dict[str, Any] = {
        "kind": "capacity",
        "scenario": ctx.source,
        "base_sha256": base_digest(ctx.base_raw),
        "target": dataclasses.asdict(target),
        "rel_tol": rel_tol,
        "points": [{"index": t.index, "key": t.key, "overrides": t.overrides} for t in tasks],
    }
    level = ((ctx.base_raw.get("slo") or {}) if isinstance(ctx.base_raw, dict) else {}).get(
        "confidence"
    )
    if level is not None:  # "met" = met by the intervals' pessimistic bounds (module doc)
        manifest["confidence"] = {"level": level, "replications_dir": "replications"}
    if report is not None:
        # workload.rate_scale values, as the probes' overrides carry them: the search's
        # scale times the scenario's own rate_scale.
        manifest["result"] = {
            "rate_scale": absolute_rate_scale(ctx, report.result.scale),
            "lower": absolute_rate_scale(ctx, report.result.lower),
            "upper": absolute_rate_scale(ctx, report.result.upper),
            "capped": report.result.capped,
            "base_rate_per_s": report.base_rate_per_s,
            "capacity_rate_per_s": report.capacity_rate_per_s,
        }
    return manifest
