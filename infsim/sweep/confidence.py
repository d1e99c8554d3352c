"""`slo.confidence` for the store-backed searches (`infsim capacity`, `infsim plan`): run a
point's replications and judge the SLO on the pessimistic bounds of its intervals.

A point meets the SLO at confidence `level` when the base run meets it and so does the
upper bound of each limited latency's prediction interval (the lower bound of attainment),
from `num_replications` replications over every source of variation (`infsim.uncertainty`:
workload, speed noise, cost-model error). The replications are points of their own in a
second store, `<job directory>/replications/`, keyed by the point's key, the replication
and the σ per op class of the point's calibration: a resumed job finds them stored, and
`infsim results` on the job directory still lists the job's own points alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from infsim.errors import InputError
from infsim.sweep.executors import Executor
from infsim.sweep.points import PointContext, PointTask
from infsim.sweep.runner import Progress, run_tasks
from infsim.sweep.search import SLOTarget
from infsim.sweep.store import ResultStore

CONFIDENCE_REPLICATIONS = 10
"""Replications per point when the scenario sets `slo.confidence` (a 90 % interval from 10
draws: t = 1.83, about ±1.9 standard deviations of one more draw)."""
MAX_REPLICATIONS = 1000


@dataclass(frozen=True)
class Confidence:
    """How a job's points are replicated: the scenario's `slo.confidence` level, the
    replications per point, their store and executor. The σ per op class comes from each
    point's own calibration (a plan's candidates differ in GPU, hence in table), computed
    once per table."""

    level: float
    num_replications: int
    store: ResultStore
    executor: Executor | None = None
    progress: Progress | None = None
    _sigmas: dict[tuple[str, bool], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(
        cls,
        ctx: PointContext,
        num_replications: int,
        store: ResultStore,
        executor: Executor | None = None,
        progress: Progress | None = None,
    ) -> Confidence | None:
        """None when the base scenario sets no `slo.confidence`."""
        from infsim.scenario.load import validate_scenario

        scenario = validate_scenario(ctx.base_raw, ctx.source)
        level = scenario.slo.confidence
        if level is None:
            return None
        if not 2 <= num_replications <= MAX_REPLICATIONS:
            raise InputError(
                f"slo.confidence: {num_replications} replications per point; allowed 2 to "
                f"{MAX_REPLICATIONS}"
            )
        replications = ResultStore(store.root / "replications")
        return cls(level, num_replications, replications, executor, progress)

    def sigmas(self, scenario: Any, point: PointTask) -> Any:
        """σ per op class of the point's calibration (`uncertainty.sources.class_sigmas`)."""
        from infsim.scenario.resolve import resolve
        from infsim.uncertainty.sources import class_sigmas

        resolved = resolve(scenario, point.base_dir, point.source)
        moe = bool(getattr(resolved.model, "num_experts", 0))
        key = (str(resolved.calibration_dir), moe)
        if key not in self._sigmas:
            self._sigmas[key] = class_sigmas(resolved.calibration_rows, moe)
        return self._sigmas[key]

    def replicate(self, points: Sequence[PointTask]) -> list[list[dict[str, Any]]]:
        """Run (or reuse) the replications of every point, as one batch on the executor;
        per point, its replications' rows."""
        from infsim.scenario.load import validate_scenario
        from infsim.uncertainty.replicate import ReplicationTask, run_replication
        from infsim.uncertainty.sources import SOURCES

        per_point = []
        for point in points:
            scenario = validate_scenario(point.raw, point.source)
            sigmas = self.sigmas(scenario, point)
            per_point.append([ReplicationTask(i, scenario, point.base_dir, point.source,
                                              SOURCES, sigmas, parent_key=point.key)
                              for i in range(self.num_replications)])  # fmt: skip
        tasks = [t for ts in per_point for t in ts]
        run_tasks(tasks, self.store, self.executor, self.progress, run_fn=run_replication)
        return [[self.store.read(t.key) for t in ts] for ts in per_point]

    def bounded(
        self, target: SLOTarget, row: dict[str, Any], replicates: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The row the SLO is judged on: `row` with each limited column at its interval's
        pessimistic bound (`SLOTarget.bound_row`), or the row itself when the base run
        already misses (its own value is then the evidence)."""
        if not target.met(row):
            return row
        return target.bound_row(row, replicates, self.level)
