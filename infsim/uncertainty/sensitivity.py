"""Pure cliff arithmetic: how far each p99 moves when step cost or arrival rate is 10 % off.

Four extra runs share the base run's seed and requests (common random numbers, so the
difference is the perturbation and not a new draw): step cost × (1 ± step) through the
cost-model hook (`infsim.cost.perturb`, every op class alike) and arrival rate × (1 ± step)
through `workload.rate_scale`. Per p99 and perturbation:

    ratio_minus = p99(1 − step) / p99,  ratio_plus = p99(1 + step) / p99
    elasticity  = (p99(1 + step) − p99(1 − step)) / (2 · step · p99)

An elasticity of 1 is proportional (10 % dearer steps, 10 % longer tails); near saturation
queueing multiplies it (an M/M/1 wait has elasticity ρ/(1 − ρ) + 1 in the service time).
A *cliff* is a ratio above `CLIFF_RATIO` or below 1 / `CLIFF_RATIO`: a 10 % modelling error
there changes the p99 by more than 2×, so the prediction cannot be planned on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STEP = 0.1
CLIFF_RATIO = 2.0
METRICS = ("ttft", "tpot", "itl", "e2e")
PERTURBATIONS = ("step_cost", "arrival_rate")


def elasticity(minus: float, base: float, plus: float, step: float = STEP) -> float | None:
    """Central-difference elasticity of a value to a relative change `step` of its input;
    None when the base is not positive (no requests, or a value of 0)."""
    if base is None or minus is None or plus is None or base <= 0:
        return None
    return (plus - minus) / (2 * step * base)


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base <= 0:
        return None
    return value / base


def is_cliff(ratio: float | None, limit: float = CLIFF_RATIO) -> bool:
    return ratio is not None and (ratio > limit or ratio < 1 / limit)


def sensitivity_section(
    base: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]], step: float = STEP
) -> dict[str, Any]:
    """summary.json's `sensitivity`. `base`: the base run's `latency_s`; `runs`: the
    perturbed runs' `latency_s` keyed `step_cost_minus`, `step_cost_plus`,
    `arrival_rate_minus`, `arrival_rate_plus` (a missing one leaves its entries None)."""
    out: dict[str, Any] = {"step": step, "cliff_ratio": CLIFF_RATIO}
    warnings: list[str] = []
    for what in PERTURBATIONS:
        section: dict[str, Any] = {}
        for metric in METRICS:
            p99 = (base.get(metric) or {}).get("p99")
            minus = ((runs.get(f"{what}_minus") or {}).get(metric) or {}).get("p99")
            plus = ((runs.get(f"{what}_plus") or {}).get(metric) or {}).get("p99")
            entry = {
                "p99_s": p99,
                "p99_minus_s": minus,
                "p99_plus_s": plus,
                "ratio_minus": _ratio(minus, p99),
                "ratio_plus": _ratio(plus, p99),
                "elasticity": elasticity(minus, p99, plus, step),
            }
            section[metric] = entry
            for sign, key in (("−", "ratio_minus"), ("+", "ratio_plus")):
                if is_cliff(entry[key]):
                    warnings.append(
                        f"{metric.upper()} p99 changes {entry[key]:.2f}× when "
                        f"{what.replace('_', ' ')} is {sign}{step:.0%}"
                    )
        out[what] = section
    out["cliff"] = bool(warnings)
    out["warnings"] = warnings
    return out
