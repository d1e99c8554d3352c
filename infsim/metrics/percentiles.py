"""Percentiles as the benchmark clients compute them (numpy 'linear'), also for weighted data.

`describe_weighted(values, counts)`'s percentiles equal
`np.percentile(np.repeat(values, counts), q)` without materialising the repeated array (ITL
samples are stored as (gap, count) pairs).
"""

from __future__ import annotations

import itertools
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


def _sorted_weighted_percentile(
    values: np.ndarray, order: np.ndarray, cum: np.ndarray, q: float
) -> float:
    """The q-th percentile of `values` weighted, given their sort `order` and the
    cumulative counts in that order."""
    n = int(cum[-1])
    rank = q / 100.0 * (n - 1)
    lo, frac = int(np.floor(rank)), rank - np.floor(rank)
    v_lo = values[order[int(np.searchsorted(cum, lo + 1))]]
    v_hi = values[order[int(np.searchsorted(cum, min(lo + 2, n)))]]
    diff = v_hi - v_lo  # numpy's lerp: from the nearer end, so the result is exact there
    return float(v_hi - diff * (1 - frac) if frac >= 0.5 else v_lo + diff * frac)


_FSUM_CHUNK = 1 << 16


def describe_weighted(values: np.ndarray, counts: np.ndarray) -> dict[str, float | None]:
    """mean, p50, p90, p95, p99 of `values[i]` occurring `counts[i]` times. Lean on memory
    (ITL samples run to ~10 per request, and this runs at a long run's memory peak): two
    index-sized arrays besides the inputs, which are not modified."""
    keep = counts > 0
    if not keep.all():
        values, counts = values[keep], counts[keep]
    del keep
    if values.size == 0:
        return dict.fromkeys(STATS)
    # fsum is exactly rounded, so the mean does not depend on the order of the samples or
    # on reading the products a chunk at a time.
    products = (
        values[i : i + _FSUM_CHUNK] * counts[i : i + _FSUM_CHUNK]
        for i in range(0, values.size, _FSUM_CHUNK)
    )
    mean = math.fsum(itertools.chain.from_iterable(products)) / int(counts.sum())
    # Any sorting order will do: equal values are the same value whichever of them a
    # rank lands on (numpy's default argsort is ~3x faster than a stable one here).
    order = np.argsort(values)
    cum = counts[order].astype(np.int64, copy=False)
    np.cumsum(cum, out=cum)
    return {
        "mean": mean,
        **{f"p{int(q)}": _sorted_weighted_percentile(values, order, cum, q) for q in _QS},
    }
