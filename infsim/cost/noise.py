"""Host speed noise: a replica's engine runs faster or slower than its cost model from one
moment to the next (a shared or throttled host, noisy neighbours, clock changes).

The engine's speed (work per second, relative to the cost model) is piecewise constant
over consecutive windows of `correlation_s` seconds, drawn independently per window from a
log-normal distribution with mean 1 and coefficient of variation `cv`; a step starting in
a window takes its cost-model time divided by that speed. Mean-one *speed* keeps the mean
step time that calibration measured (an average over steps: more steps fall in fast
windows, so mean-one durations would shorten it by a factor 1 + cv²); the spread widens
per-request TPOT and the tails that follow from it. Pure: the multiplier is a function of
the seed, the replica and the time, so runs are reproducible and a fast-forwarded decode
run lands on the same floats as stepping (both price each step at its own start time).
"""

from __future__ import annotations

import math

import numpy as np

_CHUNK = 1024  # windows drawn at a time


class SpeedNoise:
    def __init__(self, cv: float, correlation_s: float, seed: int, replica_id: int) -> None:
        if cv < 0 or correlation_s <= 0:
            raise ValueError("speed noise needs cv >= 0 and correlation_s > 0")
        self.cv, self.correlation_s = cv, correlation_s
        self._sigma = math.sqrt(math.log1p(cv * cv))
        self._rng = np.random.default_rng([seed, replica_id, 0x5BEED])
        self._factors: list[float] = []

    def factor(self, now_s: float) -> float:
        """The duration multiplier of a step starting at `now_s` (≥ 0)."""
        window = int(now_s // self.correlation_s)
        factors = self._factors
        while window >= len(factors):
            # duration factor = 1 / speed, speed = exp(N(-σ²/2, σ²)) (mean 1)
            log_speed = self._rng.normal(-0.5 * self._sigma**2, self._sigma, _CHUNK)
            factors.extend(np.exp(-log_speed).tolist())
        return factors[window]
