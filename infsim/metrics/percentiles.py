"""Percentiles as the benchmark clients compute them (numpy 'linear'), also for weighted data.

`weighted_percentile(values, counts, q)` equals `np.percentile(np.repeat(values, counts), q)`
without materialising the repeated array (ITL samples are stored as (gap, count) pairs).
"""

from __future__ import annotations

import math

import numpy as np

STATS = ("mean", "p50", "p90", "p95", "p99")
_QS = (50.0, 90.0, 95.0, 99.0)


def describe(values: np.ndarray) -> dict[str, float | None]:
    """mean, p50, p90, p95, p99 of `values` (None for an empty sample)."""
    if values.size == 0:
        return dict.fromkeys(STATS)
    pct = np.percentile(values, _QS)
    return {
        "mean": float(values.mean()),
        **{f"p{int(q)}": float(v) for q, v in zip(_QS, pct, strict=True)},
    }


def weighted_percentile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    order = np.argsort(values, kind="stable")
    return _sorted_weighted_percentile(values[order], np.cumsum(counts[order]), q)


def _sorted_weighted_percentile(v: np.ndarray, cum: np.ndarray, q: float) -> float:
    n = int(cum[-1])
    rank = q / 100.0 * (n - 1)
    lo, frac = int(np.floor(rank)), rank - np.floor(rank)
    i_lo = int(np.searchsorted(cum, lo + 1))
    i_hi = int(np.searchsorted(cum, min(lo + 2, n)))
    return float(v[i_lo] + frac * (v[i_hi] - v[i_lo]))


def describe_weighted(values: np.ndarray, counts: np.ndarray) -> dict[str, float | None]:
    keep = counts > 0
    values, counts = values[keep], counts[keep]
    if values.size == 0:
        return dict.fromkeys(STATS)
    # fsum is exactly rounded, so the mean does not depend on the order of the samples; it
    # reads the array element by element (a list of every sample would be ~32 bytes each).
    mean = math.fsum(values * counts) / int(counts.sum())
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(counts[order])
    return {"mean": mean, **{f"p{int(q)}": _sorted_weighted_percentile(v, cum, q) for q in _QS}}
