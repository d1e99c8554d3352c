"""Pure interval arithmetic: replicate values → prediction intervals, nested like the summary.

A run's prediction is one draw of a noisy system. Replications (`replicate.py`) give N
further draws of each summary value under the switched-on sources of variation; the
interval at `level` is a *prediction interval for one more draw* (what a new measured run
would show), not a confidence interval for the mean of the draws:

    log scale (every value > 0): exp(m ± t · s · √(1 + 1/N)), m, s = mean and standard
    deviation of log(values), t = Student's t quantile at (1 + level) / 2, N − 1 dof
    otherwise (a value ≤ 0: attainment 0, an empty queue): the same on the values

Latencies, throughputs and costs are positive and right-skewed (a p99 is bounded below by
the service time and not above), so the log scale keeps the interval asymmetric and
positive. With N as small as 3 the t quantile widens the interval honestly (for 3 draws
at 90 %, t = 2.92) where the empirical quantiles of 3 values would only span them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy import stats

MIN_REPLICATIONS = 2
_MAX_LOG = 700.0  # exp(700) ≈ 1e304, below the float maximum


def prediction_interval(values: Iterable[float], level: float) -> tuple[float, float] | None:
    """(lo, hi) for one more draw like `values` at `level` (module doc); None with fewer
    than two finite values."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = x.size
    if n < MIN_REPLICATIONS:
        return None
    log = bool(np.all(x > 0))
    y = np.log(x) if log else x
    mean, sd = float(y.mean()), float(y.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    lo, hi = mean - half, mean + half
    if log:  # capped below float overflow (two draws 6 decades apart at 99 %)
        return math.exp(max(lo, -_MAX_LOG)), math.exp(min(hi, _MAX_LOG))
    return lo, hi


def flatten_numbers(summary: Mapping[str, Any], sections: Iterable[str]) -> dict[str, float]:
    """The numeric leaves of `sections` of a summary as {dotted.path: value} (None kept
    out; booleans are not numbers)."""
    out: dict[str, float] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}")
        elif isinstance(node, int | float) and not isinstance(node, bool):
            out[prefix] = float(node)

    for section in sections:
        if section in summary:
            walk(summary[section], section)
    return out


def interval_section(
    replicates: list[Mapping[str, float]], keys: Iterable[str], level: float
) -> dict[str, Any]:
    """{dotted key → {lo, hi, level, num_replications}} nested by the dots: the summary's
    own nesting (`intervals.latency_s.ttft.p99`). `replicates`: one flat mapping per
    replication (`flatten_numbers`); a key missing from a replication does not count."""
    nested: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in replicates if r.get(key) is not None]
        bounds = prediction_interval(values, level)
        leaf = {
            "lo": None if bounds is None else bounds[0],
            "hi": None if bounds is None else bounds[1],
            "level": level,
            "num_replications": len(values),
        }
        node = nested
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = leaf
    return nested


def lookup(nested: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a nested mapping; None when a part is missing."""
    node: Any = nested
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
