"""The model's own error and the host's slow drift: two sources fitted to validation data.

    model_error  one price factor on the whole step (every op class alike) and one on its
                 prefill part (`OpMultipliers.prefill`: the prefill rows' share of the dense
                 work and their attention, `infsim.cost.perturb`) per replication,
                 log-normal with median 1 and σ fitted to the out-of-sample residuals of
                 infsim's predictions against measured runs (`validation/fit_model_error.py`:
                 both together to the second moments of TPOT's and TTFT's residuals, each
                 weighted by how much the factor moves it, `fit_step_prefill`)
    drift        one speed factor per replication on the step and the API server alike,
                 log-normal with median 1 and σ from the repeat-to-repeat spread of the same
                 live run (the machine's slow drift over minutes, which the sub-second
                 windows of `hardware.speed_noise` average away)

The fitted σ are shipped data (`model_error.json`, written by the fit script with its
provenance), one set per device kind: `cpu` (the live vLLM CPU matrix) and `gpu` (the
measured GPU runs). A device kind without held-out data takes `fallback` (the larger of the
fitted sets, factor by factor). `drift` is 0 on GPU: its fit has no repeats to measure it,
and the GPU residuals are single runs, so their σ already holds the run-to-run spread.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from infsim.errors import InputError

FIT_FILE = Path(__file__).with_name("model_error.json")
FACTORS = ("step", "prefill", "drift")


@dataclass(frozen=True)
class ModelError:
    """log-σ of the per-replication factors: `step` (every op class), `prefill` (the
    prefill part of a step), `drift` (the step and the API server alike); `origin` says
    which fit they come from."""

    step: float
    prefill: float
    drift: float
    origin: str = ""

    def __post_init__(self) -> None:
        for name in FACTORS:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(
                    f"model error σ {name} = {value!r} ({self.origin or 'given'}): each σ "
                    "must be a finite number ≥ 0 (a log-scale standard deviation, e.g. 0.08)"
                )

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str) -> ModelError:
        try:
            return cls(*(float(data[name]["sigma"]) for name in FACTORS), origin=origin)
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"model error fit {origin}: expected {{step, prefill, drift}} each with a "
                f"numeric 'sigma' ({type(err).__name__}: {err}); regenerate it with "
                "`python validation/fit_model_error.py`"
            ) from err


def fit_sigma(log_ratios: Any, noise_var: float = 0.0) -> dict[str, float]:
    """Fit a zero-centred normal to log(measured / predicted) (scipy.stats.norm.fit with
    floc=0: σ = the root mean square, so a bias counts as spread around the point, which
    stays the base run), then take out `noise_var`, the variance the measurement itself
    adds (e.g. of a mean of n noisy repeats). Also reports the mean and a t fit's degrees
    of freedom, for the record. {sigma, sigma_raw, mean, t_df, n}."""
    x = np.asarray(log_ratios, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise InputError(
            f"model error fit: {x.size} finite residual(s); at least 2 are needed to fit σ"
        )
    _, raw = stats.norm.fit(x, floc=0.0)
    df = float("nan")
    if x.size >= 5 and np.ptp(x) > 0:
        df, _, _ = stats.t.fit(x, floc=0.0)
    sigma = math.sqrt(max(raw**2 - max(noise_var, 0.0), 0.0))
    return {"sigma": sigma, "sigma_raw": float(raw), "mean": float(x.mean()),
            "t_df": float(df), "n": int(x.size)}  # fmt: skip


def fit_step_prefill(
    step: Any, step_noise: Any, e_step: Any, ttft: Any, ttft_noise: Any, e_ttft: Any
) -> dict[str, float]:
    """σ of the step and prefill factors fitted together to two residuals per case, by
    their second moments: for each case i, the point's log ratio to the measured mean of
    TPOT (`step`, elasticity 1 to the step factor and `e_step` to the prefill factor) and
    of TTFT (`ttft`: 1 and `e_ttft`), each less the variance accounted for elsewhere
    (`*_noise`: the mean's repeat noise and what the other sources already draw):

        step_i² − step_noise_i = σ_step² + e_step_i² σ_prefill²
        ttft_i² − ttft_noise_i = σ_step² + e_ttft_i² σ_prefill²

    solved for (σ_step², σ_prefill²) ≥ 0 by non-negative least squares over all 2n
    equations (scipy.optimize.nnls). Zero-centred, like `fit_sigma`: a bias counts as
    spread around the point. Unlike sizing the prefill factor on TTFT's residual minus
    TPOT's, this does not count TPOT's own point error twice when the two errors are not
    the same error. {step, prefill, n}."""
    from scipy.optimize import nnls

    cols = [np.asarray(c, dtype=float) for c in (step, step_noise, e_step, ttft, ttft_noise,
                                                  e_ttft)]  # fmt: skip
    ok = np.logical_and.reduce([np.isfinite(c) for c in cols])
    step, step_noise, e_step, ttft, ttft_noise, e_ttft = (c[ok] for c in cols)
    n = int(step.size)
    if n < 2:
        raise InputError(f"model error fit: {n} usable case(s); at least 2 are needed")
    a = np.vstack([np.column_stack([np.ones(n), e_step**2]),
                   np.column_stack([np.ones(n), e_ttft**2])])  # fmt: skip
    b = np.concatenate([step**2 - step_noise, ttft**2 - ttft_noise])
    (var_step, var_prefill), _ = nnls(a, b)
    return {"step": math.sqrt(var_step), "prefill": math.sqrt(var_prefill), "n": n}


@cache
def _fits(path: Path = FIT_FILE) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(
            f"model error fit {path}: cannot read it ({type(err).__name__}: {err}); "
            "regenerate it with `python validation/fit_model_error.py`"
        ) from err


def device_kind(resolved: Any) -> str:
    """'cpu' or 'gpu': which fit a resolved scenario's engine takes."""
    vendor = str(getattr(getattr(resolved, "gpu", None), "vendor", "") or "")
    return "cpu" if vendor.lower() == "cpu" else "gpu"


def shipped(kind: str, path: Path = FIT_FILE) -> ModelError:
    """The shipped fit for a device kind ('cpu', 'gpu'); `fallback` for any other."""
    data = _fits(path)
    groups = data.get("groups", {})
    if kind in groups:
        return ModelError.from_dict(groups[kind], f"{path.name}: {kind}")
    return ModelError.from_dict(data["fallback"], f"{path.name}: fallback ({kind})")


def for_resolved(resolved: Any) -> ModelError:
    return shipped(device_kind(resolved))


def draw_model_error(error: ModelError, rng: np.random.Generator) -> tuple[float, float]:
    """(step, prefill) factors of one replication, log-normal with median 1."""
    step = float(np.exp(rng.normal(0.0, error.step)))
    return step, float(np.exp(rng.normal(0.0, error.prefill)))


def draw_drift(error: ModelError, rng: np.random.Generator) -> float:
    """The replication's speed factor (time multiplier), log-normal with median 1."""
    return float(np.exp(rng.normal(0.0, error.drift)))
