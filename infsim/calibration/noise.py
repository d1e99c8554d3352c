"""Estimate the host's speed noise (`hardware.speed_noise`) from one-in-flight benchmarks.

With one request in flight nothing else shapes a request's TPOT, so its spread across the
requests of a run, and how alike consecutive requests are, measure the engine's speed
swings. Under infsim's model (`infsim.cost.noise`: the step-time factor g is constant over
windows of τ seconds with a random phase, independent between windows, variance cv²), a
request decoding for D ≥ τ seconds averages g over its interval, so

    CV(TPOT)² = cv² · (τ/D − τ²/(3D²))       (Σ of squared window overlaps: Dτ − τ²/3)
    ρ₁ = τ / (6D − 2τ)                        (back-to-back requests share one window)

where ρ₁ is the lag-1 correlation of consecutive requests' TPOT. Inverting: τ = 6Dρ₁ /
(1 + 2ρ₁), then cv. ρ₁ is clipped to [0.02, 0.25] (τ between ~0.1·D and D: beyond D the
formulas no longer hold, and a run of ~20 requests cannot resolve a smaller correlation).
Each run gives one estimate; the median over runs is reported. Slow drift within a run and
timing noise count as speed noise here, so the estimate is an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infsim.calibration.bench import check_one_in_flight
from infsim.errors import InputError
from infsim.validation.formats import load_measured
from infsim.validation.replay import successful_rows

MIN_REQUESTS = 8
RHO_RANGE = (0.02, 0.25)


@dataclass(frozen=True)
class RunNoise:
    source: str
    num_requests: int
    decode_s: float  # D: mean decode time per request
    tpot_cv: float
    lag1: float


def run_noise(path: Path) -> RunNoise:
    """Per-request TPOT spread and lag-1 correlation of one one-in-flight benchmark."""
    measured = load_measured(path, "auto", None)
    check_one_in_flight(
        measured,
        path,
        "the speed-noise estimate needs runs with one request in flight (vllm bench serve "
        "--max-concurrency 1), where nothing else shapes a request's TPOT",
    )
    rows, _ = successful_rows(measured, None)  # in start order
    decoding = rows.num_output_tokens > 1
    if decoding.sum() < MIN_REQUESTS:
        raise InputError(
            f"{path}: {int(decoding.sum())} requests with decode steps; the estimate needs "
            f"at least {MIN_REQUESTS}"
        )
    decode_s = (rows.e2e_s - rows.ttft_s)[decoding]
    tpot = rows.tpot_s()
    x = tpot - tpot.mean()
    lag1 = float((x[1:] * x[:-1]).mean() / x.var()) if x.var() > 0 else 0.0
    return RunNoise(str(path), len(tpot), float(decode_s.mean()),
                    float(tpot.std() / tpot.mean()), lag1)  # fmt: skip


def speed_noise(runs: list[RunNoise]) -> tuple[float, float]:
    """(cv, correlation_s): the median of the per-run inversions (module docstring)."""
    cvs, taus = [], []
    for r in runs:
        rho = min(max(r.lag1, RHO_RANGE[0]), RHO_RANGE[1])
        tau = 6 * r.decode_s * rho / (1 + 2 * rho)
        share = tau / r.decode_s - tau**2 / (3 * r.decode_s**2)
        cvs.append(r.tpot_cv / np.sqrt(share))
        taus.append(tau)
    return float(np.median(cvs)), float(np.median(taus))
