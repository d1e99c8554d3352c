"""`infsim plan`'s wiring: candidates → rounds of points through the sweep result store.

Every candidate runs two searches one after the other (`infsim.plan.search`): the fewest
replicas meeting the SLO at the target rate, then, with that many replicas, its headroom
(the highest rate still meeting the SLO: `sweep.search.bisect_capacity` on a multiple of
the target rate). The searches of all candidates advance together, one probe each per
round, and a round's points run as one batch on the executor, so `--jobs` workers stay
busy. A probe is a point of the store (`sweep.points.make_point`: keyed by the resolved
scenario), so a plan that is killed and run again finds every finished point stored and
only replays the searches: it resumes at once. Rounds are deterministic (a round's
answers are all known before the next one starts), so the same inputs give the same plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infsim.errors import InputError
from infsim.plan.candidates import Candidate
from infsim.plan.search import FOUND, Probe, ReplicaSearch, min_replicas, next_probe
from infsim.sweep.confidence import CONFIDENCE_REPLICATIONS, Confidence
from infsim.sweep.executors import Executor
from infsim.sweep.points import PointContext, PointTask, SkippedPoint, make_point
from infsim.sweep.runner import Progress, run_tasks
from infsim.sweep.search import CapacityResult, SLOTarget, bisect_capacity
from infsim.sweep.store import ResultStore, base_digest

REPLICAS = "deployment.replicas"
RATE = "workload.target_rate_per_s"


@dataclass(frozen=True)
class PlanSettings:
    """How hard to search: replica counts up to `max_replicas`; headroom to `headroom_rel_tol`
    (relative), probing at most `max_headroom_scale` × the target rate."""

    target_rate_per_s: float
    max_replicas: int = 64
    headroom_rel_tol: float = 0.05
    max_headroom_scale: float = 8.0


@dataclass
class CandidateState:
    """One candidate's searches: the answers so far, keyed by probe, and the stored rows."""

    candidate: Candidate
    skipped: str | None = None
    replica_answers: dict[int, Probe] = field(default_factory=dict)
    rate_answers: dict[float, bool] = field(default_factory=lambda: {1.0: True})
    rows: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)
    replicas: ReplicaSearch | None = None
    headroom: CapacityResult | None = None

    @property
    def num_evaluations(self) -> int:
        return len(self.rows)

    def chosen_row(self) -> dict[str, Any] | None:
        """The row at the answer (the fewest replicas meeting the SLO), else at the largest
        replica count probed (how far the candidate got)."""
        if self.replicas is None or not self.replicas.probes:
            return None
        count = self.replicas.replicas or max(r for r, _ in self.replicas.probes)
        return self.rows.get(("replicas", count))


@dataclass
class PlanRun:
    states: list[CandidateState]
    settings: PlanSettings
    target: SLOTarget
    points: list[PointTask] = field(default_factory=list)
    num_cached: int = 0
    num_run: int = 0


def next_request(state: CandidateState, settings: PlanSettings) -> tuple[str, float] | None:
    """The candidate's next point to evaluate: ("replicas", count) or ("rate", scale of the
    target rate); None once both searches are over (or the candidate was skipped)."""
    if state.skipped is not None:
        return None
    if state.replicas is None:
        done, x, result = next_probe(
            lambda oracle: min_replicas(oracle, max_replicas=settings.max_replicas),
            state.replica_answers,
        )
        if not done:
            return ("replicas", x)
        state.replicas = result
    if state.replicas.stop != FOUND:
        return None
    if state.headroom is None:
        done, x, result = next_probe(
            lambda oracle: bisect_capacity(
                oracle,
                start=1.0,
                rel_tol=settings.headroom_rel_tol,
                max_scale=settings.max_headroom_scale,
            ),
            state.rate_answers,
        )
        if not done:
            return ("rate", x)
        state.headroom = result
    return None


def probe_of(row: dict[str, Any], target: SLOTarget) -> Probe:
    if row.get("status") != "ok":
        return Probe(False, float("inf"), str(row.get("error") or "failed"))
    violations = target.violations(row)
    return Probe(target.met(row), max(violations) if violations else 0.0)


def _overrides(state: CandidateState, request: tuple[str, float], run: PlanRun) -> dict:
    kind, x = request
    out = state.candidate.overrides()
    if kind == "replicas":
        out[REPLICAS] = int(x)
    else:
        out[REPLICAS] = state.replicas.replicas
        out[RATE] = round(run.settings.target_rate_per_s * x, 9)
    return out


def _skip_reason(point: SkippedPoint, source: str) -> str:
    text = point.reason.removeprefix("infeasible: ").removeprefix(f"{source}: ")
    text = " ".join(text.split())
    return text if len(text) <= 220 else text[:217] + "..."


def run_plan(  # noqa: PLR0913
    ctx: PointContext,
    candidates: list[Candidate],
    target: SLOTarget,
    settings: PlanSettings,
    store: ResultStore,
    executor: Executor | None = None,
    *,
    on_round: Callable[[int, int, int], None] | None = None,
    force: bool = False,
    notes: dict[str, Any] | None = None,
) -> PlanRun:
    """Size every candidate (rounds as in the module docstring), holding the store's writer
    lock; a directory holding another job's results is refused unless `force`.
    `on_round(round, points (one per candidate still searching), points stored before)`
    reports progress."""
    run = PlanRun([CandidateState(c) for c in candidates], settings, target)
    ctx = dataclasses.replace(ctx, skip_infeasible=True)
    # slo.confidence: each point also runs replications, and the SLO is judged on its
    # intervals' pessimistic bounds (sweep/confidence.py); the rows keep the point values.
    confidence = Confidence.of(ctx, CONFIDENCE_REPLICATIONS, store, executor)
    with store.lock():
        store.claim(_manifest(ctx, run, notes), force=force)
        round_no = 0
        while True:
            batch = _next_batch(ctx, run)
            store.write_manifest(_manifest(ctx, run, notes))
            if not batch:
                break
            round_no += 1
            outcome = run_tasks([t for _, _, t in batch], store, executor, Progress())
            run.num_cached += outcome.num_cached
            run.num_run += outcome.num_executed
            tasks = [t for _, _, t in batch]
            replicates = confidence.replicate(tasks) if confidence else [None] * len(tasks)
            for (state, request, task), reps in zip(batch, replicates, strict=True):
                row = store.read(task.key)
                state.rows[request] = row
                judged = row if confidence is None else confidence.bounded(target, row, reps)
                if request[0] == "replicas":
                    state.replica_answers[int(request[1])] = probe_of(judged, target)
                else:
                    state.rate_answers[request[1]] = target.met(judged)
            if on_round is not None:
                on_round(round_no, len(batch), outcome.num_cached)
    return run


def _next_batch(
    ctx: PointContext, run: PlanRun
) -> list[tuple[CandidateState, tuple[str, float], PointTask]]:
    batch = []
    for state in run.states:
        request = next_request(state, run.settings)
        if request is None:
            continue
        point = make_point(ctx, _overrides(state, request, run), len(run.points))
        if isinstance(point, SkippedPoint):
            if request != ("replicas", 1) and state.replica_answers:
                raise InputError(f"{ctx.source}: {point.reason}")  # resolved before: a bug
            state.skipped = _skip_reason(point, ctx.source)
            continue
        run.points.append(point)
        batch.append((state, request, point))
    return batch


def _manifest(ctx: PointContext, run: PlanRun, notes: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "kind": "plan",
        "scenario": ctx.source,
        "base_sha256": base_digest(ctx.base_raw),
        "target": dataclasses.asdict(run.target),
        "settings": dataclasses.asdict(run.settings)
        | {"candidates": [c.label() for c in (s.candidate for s in run.states)]},
        "points": [{"index": t.index, "key": t.key, "overrides": t.overrides} for t in run.points],
        "skipped": [
            {"candidate": s.candidate.label(), "reason": s.skipped}
            for s in run.states
            if s.skipped is not None
        ],
        "notes": notes or {},
    }
