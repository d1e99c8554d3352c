"""`infsim optimize`: the cheapest configuration that meets the SLO, found with Optuna.

The space is an axes file (each axis a categorical choice; constraints and feasibility
as in a sweep). The objective is a summary column to minimise (default
`cost.usd_per_million_output_tokens`; `cost.usd_per_hour` for $/hour at the scenario's
load); the SLO enters TPE as constraints (relative excess of each limit, ≤ 0 = met), so
infeasible trials guide the search without winning it. Trials are asked in batches of
`batch_size` and told in trial order, so a seed and a batch size give the same trials
every time. Each trial's point goes through the result store: a repeated configuration
costs nothing, and a killed search resumes by replaying its stored points. When the budget
(`num_trials`) covers the whole space, every configuration is evaluated once (queued to
the study in grid order); otherwise a configuration TPE proposes again is told to the study
but does not count against the budget, so `num_trials` distinct configurations are tried.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from infsim.errors import InputError, did_you_mean
from infsim.sweep.executors import Executor
from infsim.sweep.expr import Expression
from infsim.sweep.points import PointContext, PointTask, SkippedPoint, make_point
from infsim.sweep.runner import Progress, run_tasks
from infsim.sweep.search import SLOTarget, pareto_front
from infsim.sweep.spec import SweepSpec
from infsim.sweep.store import ResultStore, base_digest

_CATEGORICAL = (type(None), bool, int, float, str)
MAX_ASKS_PER_TRIAL = 20
"""TPE may keep proposing configurations it has seen; stop asking after this many times the
budget (the search then reports what it found)."""


def _grid(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every configuration of the axes (their product), in axis order."""
    import itertools

    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


class _OneBar(Progress):
    """One progress bar for the whole search (run_tasks starts and stops per batch)."""

    def __init__(self, inner: Progress, total: int) -> None:
        self.inner, self.total, self.started = inner, total, False

    def start(self, total: int, cached: int) -> None:
        if not self.started:
            self.inner.start(self.total, 0)
            self.started = True

    def advance(self, row: dict[str, Any]) -> None:
        self.inner.advance(row)

    def close(self) -> None:
        if self.started:
            self.inner.stop()


@dataclass(frozen=True)
class OptimizeSettings:
    objective: str = "cost.usd_per_million_output_tokens"
    latency: str = "latency_s.e2e.p99"
    num_trials: int = 30
    seed: int = 0
    batch_size: int = 1


@dataclass(frozen=True)
class Trial:
    number: int
    overrides: dict[str, Any]
    key: str | None
    state: str  # ok | infeasible | skipped | failed
    objective: float | None
    reason: str = ""


@dataclass(frozen=True)
class OptimizeReport:
    trials: list[Trial]
    best: Trial | None
    pareto: list[Trial]


def _check_space(spec: SweepSpec, source: str) -> None:
    for path, values in spec.axes.items():
        for v in values:
            if not isinstance(v, _CATEGORICAL):
                raise InputError(
                    f"{source}: axes.{path}: optimize needs scalar choices (numbers, strings, "
                    f"booleans, null), got {type(v).__name__} {v!r}"
                )


def optimize(
    ctx: PointContext,
    spec: SweepSpec,
    target: SLOTarget,
    store: ResultStore,
    settings: OptimizeSettings,
    executor: Executor | None = None,
    progress: Progress | None = None,
    *,
    force: bool = False,
) -> OptimizeReport:
    """Run the search, holding the store's writer lock; a directory holding another
    job's results is refused unless `force` (see `ResultStore.claim`)."""
    _check_space(spec, ctx.source)
    with store.lock():
        store.claim(_manifest(ctx, spec, target, settings, []), force=force)
        return _search(ctx, spec, target, store, settings, executor, progress)


def _search(
    ctx: PointContext,
    spec: SweepSpec,
    target: SLOTarget,
    store: ResultStore,
    settings: OptimizeSettings,
    executor: Executor | None,
    progress: Progress | None,
) -> OptimizeReport:
    optuna = _optuna()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ctx = dataclasses.replace(ctx, skip_infeasible=spec.skip_infeasible)
    constraints = [
        Expression(t, f"{ctx.source}: constraints[{i}]") for i, t in enumerate(spec.constraints)
    ]
    sampler = optuna.samplers.TPESampler(seed=settings.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    grid = _grid(spec.axes)
    exhaustive = len(grid) <= settings.num_trials
    if exhaustive:  # the budget covers the space: evaluate every configuration once
        for params in grid:
            study.enqueue_trial(params)
    budget = len(grid) if exhaustive else settings.num_trials
    bar = _OneBar(progress or Progress(), budget)
    trials: list[Trial] = []
    seen: set[tuple] = set()
    asks = 0
    while len(seen) < budget and asks < MAX_ASKS_PER_TRIAL * budget:
        n = min(settings.batch_size, budget - len(seen))
        asked = [study.ask() for _ in range(n)]
        asks += n
        chosen = [{p: t.suggest_categorical(p, v) for p, v in spec.axes.items()} for t in asked]
        pairs = zip(chosen, asked, strict=True)
        points = [make_point(ctx, c, t.number, constraints) for c, t in pairs]
        tasks = [p for p in points if isinstance(p, PointTask)]
        run_tasks(tasks, store, executor, bar)
        for trial, point, params in zip(asked, points, chosen, strict=True):
            told = _tell(study, trial, point, store, target, settings.objective)
            config = tuple(sorted(params.items(), key=lambda kv: kv[0]))
            if config not in seen:  # a configuration proposed again is told, not counted
                seen.add(config)
                trials.append(told)
        _write_manifest(store, ctx, spec, target, settings, trials)
    bar.close()
    report = _report(trials, store, settings)
    _write_manifest(store, ctx, spec, target, settings, trials, report)
    return report


def _tell(study, trial, point, store, target: SLOTarget, objective: str) -> Trial:
    optuna = _optuna()

    overrides = dict(point.overrides)
    if isinstance(point, SkippedPoint):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return Trial(trial.number, overrides, None, "skipped", None, point.reason)
    row = store.read(point.key)
    if row["status"] == "ok" and objective not in row:
        known = sorted(k for k in row if "." in k)
        raise InputError(
            f"--objective {objective!r}: not a summary column{did_you_mean(objective, known)}; "
            f"columns: {', '.join(known)}"
        )
    value = row.get(objective)
    if row["status"] != "ok" or value is None:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        reason = row.get("error") or f"{objective} is missing"
        return Trial(trial.number, overrides, point.key, "failed", None, reason)
    violations = target.violations(row)
    for column, violation in zip(target.limits(), violations, strict=True):
        trial.set_constraint(column, violation)  # ≤ 0 = met; TPE ranks feasible trials first
    study.tell(trial, float(value))
    state = "ok" if all(v <= 0 for v in violations) else "infeasible"
    return Trial(trial.number, overrides, point.key, state, float(value))


def _report(trials: list[Trial], store: ResultStore, settings: OptimizeSettings) -> OptimizeReport:
    feasible = [t for t in trials if t.state == "ok"]
    best = min(feasible, key=lambda t: (t.objective, t.number)) if feasible else None
    evaluated = {t.key: t for t in trials if t.objective is not None}  # one per configuration
    unique = list(evaluated.values())
    latencies = [store.read(t.key).get(settings.latency) for t in unique]
    front = pareto_front([t.objective for t in unique], latencies)
    return OptimizeReport(trials, best, [unique[i] for i in front])


def _write_manifest(
    store: ResultStore,
    ctx: PointContext,
    spec: SweepSpec,
    target: SLOTarget,
    settings: OptimizeSettings,
    trials: list[Trial],
    report: OptimizeReport | None = None,
) -> None:
    store.write_manifest(_manifest(ctx, spec, target, settings, trials, report))


def _manifest(
    ctx: PointContext,
    spec: SweepSpec,
    target: SLOTarget,
    settings: OptimizeSettings,
    trials: list[Trial],
    report: OptimizeReport | None = None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "kind": "optimize",
        "scenario": ctx.source,
        "base_sha256": base_digest(ctx.base_raw),
        "axes": spec.model_dump(mode="json"),
        "target": dataclasses.asdict(target),
        "settings": dataclasses.asdict(settings),
        "points": [
            {"index": t.number, "key": t.key, "overrides": t.overrides}
            for t in trials
            if t.key is not None
        ],
        "trials": [dataclasses.asdict(t) for t in trials],
    }
    if report is not None:
        manifest["best"] = None if report.best is None else dataclasses.asdict(report.best)
        manifest["pareto_keys"] = [t.key for t in report.pareto]
    return manifest


def _optuna():
    """optuna, an optional dependency: only `infsim optimize` uses it."""
    try:
        import optuna
    except ImportError:
        raise InputError(
            "infsim optimize needs optuna, an optional dependency: pip install "
            "'infsim[optimize]' (infsim sweep, capacity and plan do not need it)"
        ) from None
    return optuna
