"""Small least-squares helpers shared by the cost model, the front end and the fits."""

from __future__ import annotations

import numpy as np


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through (x, y); with fewer than two
    distinct x, the mean of y and slope 0."""
    if np.unique(x).size < 2:
        return float(np.mean(y)), 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)
