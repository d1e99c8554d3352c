"""Cost curves: measured points → a dense grid evaluated with plain linear interpolation.

Measurements are interpolated in log-log space (GEMM and attention times are close to
power laws between grid points) and, outside the measured range, extended with the
roofline's shape: t(x) = t(x_edge) · roof(x) / roof(x_edge), so an extrapolation never
goes unphysical. The result is sampled once on a dense geometric grid covering every
size the simulation can ask for; the hot path is then `numpy.interp` on that grid — no
logarithms, no scipy — which is cheap and gives bit-identical results for a scalar or
an array (the fast-forward relies on that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Roof = Callable[[np.ndarray], np.ndarray]


def geometric_grid(lo: float, hi: float, points_per_octave: int = 16) -> np.ndarray:
    """Integers-friendly geometric grid from lo to hi inclusive (both ≥ 1)."""
    octaves = max(np.log2(hi / lo), 1e-9)
    n = int(np.ceil(octaves * points_per_octave)) + 1
    grid = np.unique(np.round(np.geomspace(lo, hi, n), 6))
    grid[0], grid[-1] = lo, hi
    return grid


@dataclass(frozen=True)
class Curve:
    """t(x) sampled on `x_grid`; `measured` = (lo, hi) of the data it came from."""

    x_grid: np.ndarray
    t_grid: np.ndarray
    measured: tuple[float, float]
    method: str  # "measured", "interpolated-shape", "scaled-shape", "roofline"
    note: str = ""  # how other rows stood in: "float16 from bfloat16 rows", "×4 KV bytes of …"

    def __call__(self, x: float | np.ndarray) -> float | np.ndarray:
        return np.interp(x, self.x_grid, self.t_grid)


def loglog_curve(xs: np.ndarray, ts: np.ndarray, grid: np.ndarray, roof: Roof) -> np.ndarray:
    """Sample measured (xs, ts) on `grid`: log-log inside, roofline-shaped outside."""
    order = np.argsort(xs)
    xs, ts = np.asarray(xs, float)[order], np.asarray(ts, float)[order]
    xs, idx = np.unique(xs, return_index=True)
    ts = ts[idx]
    inside = np.exp(np.interp(np.log(grid), np.log(xs), np.log(ts)))
    lo, hi = xs[0], xs[-1]
    below, above = grid < lo, grid > hi
    out = inside
    if below.any():
        out[below] = ts[0] * roof(grid[below]) / roof(np.array([lo]))[0]
    if above.any():
        out[above] = ts[-1] * roof(grid[above]) / roof(np.array([hi]))[0]
    return out


def log_blend(t0: np.ndarray, t1: np.ndarray, x0: float, x1: float, x: float) -> np.ndarray:
    """Interpolate between two curves at parameters x0 < x1 in log space."""
    if x1 == x0:
        return t0
    w = (np.log(x) - np.log(x0)) / (np.log(x1) - np.log(x0))
    return np.exp((1 - w) * np.log(t0) + w * np.log(t1))


def bracket(values: np.ndarray, x: float) -> tuple[float, float]:
    """The grid values around x (equal when x is on the grid or outside it)."""
    values = np.sort(np.unique(values))
    if x <= values[0]:
        return values[0], values[0]
    if x >= values[-1]:
        return values[-1], values[-1]
    i = int(np.searchsorted(values, x))
    if values[i] == x:
        return x, x
    return values[i - 1], values[i]
