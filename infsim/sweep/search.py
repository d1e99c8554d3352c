"""Pure search policies: SLO targets on a summary row, capacity bisection, Pareto front.

No I/O and no simulator here: capacity bisection takes any monotone oracle `meets(x)`,
so it is tested against synthetic oracles; the drivers in `capacity.py` and
`optimize.py` plug the simulator in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infsim.errors import InputError

#: Violation reported for a metric that is missing (no request completed, failed point).
MISSING_VIOLATION = 1e9


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool | str):
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class SLOTarget:
    """What "meets the SLO" means for a run: p99 latency limits (s) and a minimum share of
    requests meeting the scenario's per-request `slo:` thresholds. None = not checked."""

    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None
    e2e_p99_s: float | None = None
    min_attainment: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s"):
            value = getattr(self, name)
            if value is not None and not (_number(value) is not None and 0 < value < math.inf):
                raise InputError(
                    f"SLO {name}: {value!r} is not allowed; a latency limit is a finite number "
                    "of seconds above 0"
                )
        value = self.min_attainment
        if value is not None and not (_number(value) is not None and 0 < value <= 1):
            raise InputError(
                f"SLO min_attainment: {value!r} is not allowed; it is a share of requests "
                "above 0 and at most 1"
            )

    def limits(self) -> dict[str, tuple[float, str]]:
        """Summary column → (limit, "max" | "min")."""
        out = {}
        for column, limit in (
            ("latency_s.ttft.p99", self.ttft_p99_s),
            ("latency_s.tpot.p99", self.tpot_p99_s),
            ("latency_s.e2e.p99", self.e2e_p99_s),
        ):
            if limit is not None:
                out[column] = (limit, "max")
        if self.min_attainment is not None:
            out["slo.attainment"] = (self.min_attainment, "min")
        return out

    def violations(self, row: Mapping[str, Any]) -> list[float]:
        """Relative excess per limit (≤ 0 = met), in `limits()` order: Optuna's constraints."""
        out = []
        for column, (limit, sense) in self.limits().items():
            value = _number(row.get(column))
            if value is None:
                out.append(MISSING_VIOLATION)
            elif sense == "max":
                out.append(value / limit - 1.0)
            else:
                out.append(1.0 - value / limit if limit > 0 else -value)
        return out

    def met(self, row: Mapping[str, Any]) -> bool:
        if row.get("status", "ok") != "ok":
            return False
        return all(v <= 0 for v in self.violations(row))

    def met_with_confidence(
        self, row: Mapping[str, Any], replicates: Sequence[Mapping[str, Any]], level: float
    ) -> bool:
        """Met at confidence `level`: the base run met it and so does the bound of each
        limited column's prediction interval from `replicates` (the upper bound for a
        latency limit, the lower one for attainment; `infsim.uncertainty.intervals`). Too
        few successful replicates for an interval: not met."""
        return self.met(row) and self.met(self.bound_row(row, replicates, level))

    def bound_row(
        self, row: Mapping[str, Any], replicates: Sequence[Mapping[str, Any]], level: float
    ) -> dict[str, Any]:
        """`row` with each limited column replaced by its interval's pessimistic bound
        (None when the replicates do not give one)."""
        from infsim.uncertainty.intervals import prediction_interval

        ok = [r for r in replicates if r.get("status", "ok") == "ok"]
        out = dict(row)
        for column, (_limit, sense) in self.limits().items():
            values = [v for r in ok if (v := _number(r.get(column))) is not None]
            bounds = prediction_interval(values, level)
            out[column] = None if bounds is None else bounds[1 if sense == "max" else 0]
        return out

    def describe(self) -> str:
        parts = [
            f"{col} {'≤' if sense == 'max' else '≥'} {limit:g}"
            for col, (limit, sense) in self.limits().items()
        ]
        return " and ".join(parts) or "(no SLO limits)"


# -- capacity -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CapacityResult:
    """`scale` is the highest probed scale that met the SLO (0 if none did). With a
    monotone oracle the true capacity lies in [lower, upper) and
    upper - lower ≤ rel_tol × upper, unless `capped` (met even at `max_scale`)."""

    scale: float
    lower: float
    upper: float | None
    rel_tol: float
    capped: bool
    probes: list[tuple[float, bool]] = field(default_factory=list)


def bisect_capacity(
    meets: Callable[[float], bool],
    *,
    start: float = 1.0,
    rel_tol: float = 0.02,
    min_scale: float = 1 / 1024,
    max_scale: float = 1024.0,
) -> CapacityResult:
    """Highest x in [min_scale, max_scale] with meets(x), for meets monotone (true below
    the capacity, false above): bracket by doubling or halving from `start`, then bisect
    until the bracket is within `rel_tol` of its upper end."""
    probes: list[tuple[float, bool]] = []

    def probe(x: float) -> bool:
        ok = bool(meets(x))
        probes.append((x, ok))
        return ok

    lo, hi = 0.0, None
    x = start
    if probe(x):
        lo = x
        while hi is None:
            if x >= max_scale:
                return CapacityResult(lo, lo, None, rel_tol, True, probes)
            x = min(x * 2, max_scale)
            if probe(x):
                lo = x
            else:
                hi = x
    else:
        hi = x
        while lo == 0.0:
            if x <= min_scale:
                return CapacityResult(0.0, 0.0, hi, rel_tol, False, probes)
            x = max(x / 2, min_scale)
            if probe(x):
                lo = x
            else:
                hi = x
    while hi - lo > rel_tol * hi:
        mid = (lo + hi) / 2
        if probe(mid):
            lo = mid
        else:
            hi = mid
    return CapacityResult(lo, lo, hi, rel_tol, False, probes)


# -- Pareto front ---------------------------------------------------------------------------
def pareto_front(costs: Sequence[Any], latencies: Sequence[Any]) -> list[int]:
    """Indices of the points no other point beats on both cost and latency (both
    minimised), in increasing cost. Missing values (None/NaN) are never on the front; of
    identical points only the first is."""
    pairs = [
        (c, lat, i)
        for i, (c, lat) in enumerate(zip(map(_number, costs), map(_number, latencies), strict=True))
        if c is not None and lat is not None
    ]
    front: list[int] = []
    best_latency = math.inf
    for _cost, latency, index in sorted(pairs):
        if latency < best_latency:
            front.append(index)
            best_latency = latency
    return front
