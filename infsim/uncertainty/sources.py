"""The sources of variation an interval covers, each switchable and described in the output.

    workload     another sample of the traffic: a synthetic workload regenerated with a
                 derived seed; a trace resampled by moving blocks of its arrival process
                 (`blocks.py`)
    speed_noise  another run on the same engine: a derived seed for the run's own random
                 draws, i.e. the host speed windows of `hardware.speed_noise` (and, where
                 the scenario has them, speculative acceptance, random routing, failures)
    cost_model   the cost model's own error: one price factor per op class
                 (`infsim.cost.perturb`: dense, attention, lm_head, overhead) per
                 replication, log-normal with median 1 and the class's σ (below)
    model_error  the model's own error, fitted to out-of-sample validation residuals: one
                 factor on the whole step and one on its prefill part per replication
                 (`model_error.py`)
    drift        the host's slow drift: one speed factor per replication, σ from the
                 repeat-to-repeat spread of live runs (`model_error.py`)

σ per op class. A calibration table knows its held-out error per op (the leave-one-out
interpolation error of `infsim calibrate report`, `calibration/fit_quality.py`: median
and p95 of |error|). The |log error| is taken as half-normal, scale σ, fitted to those two
quantiles by least squares in log space: σ = √(σ₅₀ · σ₉₅) with σ_q = quantile_q /
halfnorm.ppf(q) (scipy). The class takes its main op's σ (dense: gemm, or moe for MoE
models; attention: the larger of decode and prefill; lm_head: lm_head rows, else gemm,
which prices the head then), never below `MIN_SIGMA`. A class the table does not measure
is priced by the roofline and takes `ROOFLINE_SIGMA`, as does every class of a roofline
scenario; the step overhead takes `OVERHEAD_SIGMA` when fitted to measured rows, else
`ROOFLINE_SIGMA`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from infsim.cost.perturb import OP_CLASSES, OpMultipliers
from infsim.errors import InputError

SOURCES = ("workload", "speed_noise", "cost_model", "model_error", "drift")
FITTED = ("model_error", "drift")
"""The sources fitted to validation data (`model_error.py`): listed in `intervals.sources`
only when switched on, so a run without them has the same summary as before they existed."""

ROOFLINE_SIGMA = 0.25
"""log-σ of an op class the roofline prices: its efficiencies are guesses (0.6 of peak
FLOP/s, 0.8 of bandwidth), typically 20-40 % off a real engine's kernels; exp(±1.645 ·
0.25) spans ×0.66 to ×1.51 at 90 %."""
OVERHEAD_SIGMA = 0.10
"""log-σ of a step overhead fitted to a table's measured whole-step rows (host time moves
by ~10 % between sessions on the same machine: validation/live/README.md)."""
MIN_SIGMA = 0.02
"""Floor of a measured class's σ: a table's leave-one-out error measures interpolation
between its own points, not the kernel's run-to-run spread or the engine around it."""

_PRIMARY = {
    "dense": (("gemm",), ("moe", "gemm")),  # (dense model, MoE model)
    "attention": (("attention_decode", "attention_prefill"),) * 2,
    "lm_head": (("lm_head", "gemm"),) * 2,
}


@dataclass(frozen=True)
class ClassSigma:
    sigma: float
    origin: str  # where it came from, for summary.json


def halfnormal_sigma(median_abs: float, p95_abs: float) -> float:
    """Scale of a half-normal |log error| with these median and p95 (fractions)."""
    s50 = math.log1p(median_abs) / float(stats.halfnorm.ppf(0.5))
    s95 = math.log1p(p95_abs) / float(stats.halfnorm.ppf(0.95))
    return math.sqrt(max(s50, 0.0) * max(s95, 0.0))


def class_sigmas(rows: pd.DataFrame | None, moe: bool = False) -> dict[str, ClassSigma]:
    """σ per op class for a scenario's calibration rows (None: the roofline)."""
    if rows is None:
        return {c: ClassSigma(ROOFLINE_SIGMA, "roofline default") for c in OP_CLASSES}
    from infsim.calibration.fit_quality import leave_one_out

    loo = leave_one_out(rows).set_index("op") if len(rows) else pd.DataFrame()
    fitted = {
        op: halfnormal_sigma(r.median_abs_err_pct / 100, r.p95_abs_err_pct / 100)
        for op, r in loo.iterrows()
        if r.points and np.isfinite(r.median_abs_err_pct)
    }
    out: dict[str, ClassSigma] = {}
    for cls, options in _PRIMARY.items():
        ops = [op for op in options[int(moe)] if op in fitted]
        if cls == "lm_head" and ops:
            ops = ops[:1]  # the head's own rows when measured, else gemm's
        if not ops:
            out[cls] = ClassSigma(ROOFLINE_SIGMA, "roofline default (not in the table)")
            continue
        sigma = max(fitted[op] for op in ops)
        out[cls] = ClassSigma(max(sigma, MIN_SIGMA), f"held-out error of {', '.join(ops)}")
    measured = (rows["op"] == "step_overhead").any()
    out["overhead"] = (
        ClassSigma(OVERHEAD_SIGMA, "measured step_overhead rows (default spread)")
        if measured
        else ClassSigma(ROOFLINE_SIGMA, "default step overhead")
    )
    return out


def draw_multipliers(sigmas: dict[str, ClassSigma], rng: np.random.Generator) -> OpMultipliers:
    """One log-normal factor per class, median 1 (in `OP_CLASSES` order)."""
    return OpMultipliers(**{c: float(np.exp(rng.normal(0.0, sigmas[c].sigma))) for c in OP_CLASSES})


def parse_sources(text: str | None, option: str = "--interval-sources") -> tuple[str, ...]:
    """'workload,cost_model' → the sources in canonical order; None or 'all' → all."""
    if text is None or text.strip() == "all":
        return SOURCES
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in SOURCES]
    if bad or not names:
        what = f"unknown source {', '.join(map(repr, bad))}" if bad else "no source named"
        raise InputError(
            f"{option} {text!r}: {what}; allowed: a comma-separated subset of "
            f"{', '.join(SOURCES)}, or 'all'"
        )
    return tuple(s for s in SOURCES if s in names)


def methods(
    sources: tuple[str, ...],
    synthetic: bool,
    noise: Any,
    sigmas: dict[str, ClassSigma],
    error: Any = None,
) -> dict[str, Any]:
    """summary.json's `intervals.sources`: per source, on or off and how it varies."""
    workload = (
        "independent replications: the synthetic workload regenerated with a derived seed"
        if synthetic
        else "moving-block bootstrap of the trace's arrival process "
        "(10 blocks of span/10; closed-loop traces: requests resampled)"
    )
    speed = (
        f"derived seed per replication for hardware.speed_noise (cv {noise.cv:g}, "
        f"correlation {noise.correlation_s:g} s) and the run's other random draws"
        if noise is not None
        else "derived seed per replication for the run's random draws; "
        "hardware.speed_noise is not set, so host speed does not vary"
    )
    cost = "per-op-class log-normal price factors, median 1, σ per class: " + ", ".join(
        f"{c} {sigmas[c].sigma:.3f} ({sigmas[c].origin})" for c in OP_CLASSES
    )
    out = {
        "workload": {"enabled": "workload" in sources, "method": workload},
        "speed_noise": {"enabled": "speed_noise" in sources, "method": speed},
        "cost_model": {"enabled": "cost_model" in sources, "method": cost,
                       "sigma": {c: sigmas[c].sigma for c in OP_CLASSES}},
    }  # fmt: skip
    if "model_error" in sources and error is not None:
        out["model_error"] = {
            "enabled": True,
            "method": "one log-normal factor (median 1) on the whole step and one on its "
            f"prefill part per replication, σ step {error.step:.3f}, prefill "
            f"{error.prefill:.3f}, fitted to out-of-sample validation residuals "
            f"({error.origin})",
            "sigma": {"step": error.step, "prefill": error.prefill},
        }
    if "drift" in sources and error is not None:
        out["drift"] = {
            "enabled": True,
            "method": "one log-normal speed factor (median 1) per replication on the step and "
            f"the API server alike, σ {error.drift:.3f} from the repeat-to-repeat spread of "
            f"live runs ({error.origin})",
            "sigma": error.drift,
        }
    return out
