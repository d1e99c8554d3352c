"""One replication (or one cliff run) of a scenario, in whatever process an executor chose.

A `ReplicationTask` is plain picklable data shaped like a sweep `PointTask` (index, key,
overrides), so the sweep executors (`infsim.sweep.executors`: process pool, Ray, serial)
and the result store run it unchanged. `run_replication` returns a row like a sweep
point's: status, error, and the summary's numeric leaves as dotted columns
(`latency_s.ttft.p99`, ...).

Seeds. Replication i of a scenario with seed s draws each source from its own stream,
`SeedSequence([s, i, tag])` (tag per source), so switching one source off leaves the
others' draws unchanged, and the same scenario, seed and N give the same intervals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infsim.cost.perturb import OP_CLASSES, OpMultipliers, scaling
from infsim.uncertainty.blocks import resample_trace
from infsim.uncertainty.intervals import flatten_numbers
from infsim.uncertainty.model_error import ModelError, draw_drift, draw_model_error
from infsim.uncertainty.sources import FITTED, ClassSigma, draw_multipliers

SECTIONS = ("latency_s", "throughput", "cost", "slo")
"""Summary sections whose numeric leaves get intervals (`cost.by_pool` included)."""

_TAGS = {"workload": 0x3017, "speed_noise": 0x5EED, "cost_model": 0xC057,
         "model_error": 0xE770, "drift": 0xD21F}  # fmt: skip
_FRONTEND_COSTS = ("request_s", "request_per_prompt_token_s", "output_per_step_s",
                   "output_per_token_s")  # fmt: skip


def derived_seed(seed: int, index: int, source: str) -> int:
    return int(np.random.SeedSequence([seed, index, _TAGS[source]]).generate_state(1)[0])


@dataclass(frozen=True)
class ReplicationTask:
    """Replication `index` of `scenario` (a `Scenario`), under `sources`; or, when
    `variant` is set, the base run perturbed for the cliff indicator (`variant`:
    step_cost_minus/plus, arrival_rate_minus/plus; `factor` its size)."""

    index: int
    scenario: Any
    base_dir: str
    source: str
    sources: tuple[str, ...]
    sigmas: dict[str, ClassSigma] = field(default_factory=dict)
    variant: str | None = None
    factor: float = 1.0
    parent_key: str = ""
    """The sweep key of the point replicated (capacity probes): it covers the content of
    the files the scenario names and the infsim version, which the scenario alone does not."""
    model_error: ModelError | None = None
    """σ of the `model_error` and `drift` sources (None: the shipped fit for the scenario's
    device kind, looked up when the replication runs)."""

    @property
    def overrides(self) -> dict[str, Any]:
        """What distinguishes this task (the sweep store's and executors' `overrides`)."""
        if self.variant is not None:
            return {"variant": self.variant, "factor": self.factor}
        return {"replication": self.index, "sources": ",".join(self.sources)}

    @property
    def key(self) -> str:
        data = {"scenario": self.scenario.model_dump(mode="json"), "base_dir": self.base_dir,
                **self.overrides, "sigmas": {c: s.sigma for c, s in self.sigmas.items()},
                "parent": self.parent_key}  # fmt: skip
        if self.variant is None and set(FITTED) & set(self.sources):  # (else as before)
            e = self.model_error
            data["model_error"] = None if e is None else [e.step, e.prefill, e.drift]
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _workload_scenario(task: ReplicationTask) -> Any:
    """The scenario whose trace the task replays (rate-scaled for arrival_rate variants)."""
    scenario = task.scenario
    if task.variant in ("arrival_rate_minus", "arrival_rate_plus"):
        w = scenario.workload
        if w.time_scale is not None:
            w = w.model_copy(update={"time_scale": w.time_scale / task.factor})
        elif w.target_rate_per_s is not None:
            w = w.model_copy(update={"target_rate_per_s": w.target_rate_per_s * task.factor})
        else:
            w = w.model_copy(update={"rate_scale": (w.rate_scale or 1.0) * task.factor})
        scenario = scenario.model_copy(update={"workload": w})
    return scenario


def simulate_task(task: ReplicationTask) -> dict[str, Any]:
    """Run the task's simulation; its summary."""
    from infsim import api
    from infsim.workload.spec import build_trace

    scenario = _workload_scenario(task)
    seed, i, on = scenario.seed, task.index, task.sources
    base_dir = Path(task.base_dir)
    resolved, trace = api.prepare(scenario, base_dir, task.source)
    multipliers: OpMultipliers | None = None
    if task.variant in ("step_cost_minus", "step_cost_plus"):
        multipliers = OpMultipliers.uniform(task.factor)
    if task.variant is None:
        if "workload" in on:
            rng = np.random.default_rng(derived_seed(seed, i, "workload"))
            if scenario.workload.synthetic is not None:
                trace = build_trace(scenario.workload, base_dir=base_dir, rng=rng)
            else:
                trace = resample_trace(trace, rng)
        if "speed_noise" in on:
            run_seed = derived_seed(seed, i, "speed_noise")
            resolved = dataclasses.replace(
                resolved, scenario=resolved.scenario.model_copy(update={"seed": run_seed})
            )
        if "cost_model" in on:
            rng = np.random.default_rng(derived_seed(seed, i, "cost_model"))
            multipliers = draw_multipliers(task.sigmas, rng)
        if set(FITTED) & set(on):
            multipliers, resolved = _fitted_factors(task, resolved, multipliers)
    with scaling(multipliers):
        return api.run_resolved(resolved, trace).summary


def _fitted_factors(
    task: ReplicationTask, resolved: Any, multipliers: OpMultipliers | None
) -> tuple[OpMultipliers | None, Any]:
    """The `model_error` and `drift` draws applied: every op class's multiplier times the
    step factor, the prefill part's (`OpMultipliers.prefill`) times the prefill factor,
    the step and the API server's costs (`frontend`) times the drift factor. One draw per
    replication, from the sources' own streams."""
    from infsim.uncertainty.model_error import for_resolved

    error = task.model_error or for_resolved(resolved)
    seed, i = task.scenario.seed, task.index
    step = prefill = host = 1.0
    if "model_error" in task.sources:
        step, prefill = draw_model_error(
            error, np.random.default_rng(derived_seed(seed, i, "model_error"))
        )
    if "drift" in task.sources:
        host = draw_drift(error, np.random.default_rng(derived_seed(seed, i, "drift")))
        step *= host
    base = multipliers or OpMultipliers()
    multipliers = OpMultipliers(**{c: getattr(base, c) * step for c in OP_CLASSES},
                                prefill=base.prefill * prefill)  # fmt: skip
    scenario = resolved.scenario
    front = scenario.frontend.model_copy(
        update={name: getattr(scenario.frontend, name) * host for name in _FRONTEND_COSTS}
    )
    scenario = scenario.model_copy(update={"frontend": front})
    return multipliers, dataclasses.replace(resolved, scenario=scenario)


def run_replication(task: ReplicationTask) -> dict[str, Any]:
    """The task's row: status, error, wall seconds and the summary's numeric leaves."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"key": task.key, "status": "ok", "error": None}
    try:
        row.update(flatten_numbers(simulate_task(task), SECTIONS))
    except Exception as err:  # a failed replication is a result; the interval counts the rest
        row.update(status="failed", error=f"{type(err).__name__}: {err}")
    row["wall_s"] = time.perf_counter() - t0
    row["overrides_json"] = json.dumps(task.overrides, sort_keys=True)
    return row
