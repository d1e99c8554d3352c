"""Per-step engine overhead: the time a step takes beyond its calibrated ops.

Measured as residuals (`infsim calibrate overhead`, `infsim/calibration/overhead.py`) and
stored as `step_overhead` rows; fitted here by least squares into the terms the calibrated
cost model adds to every step. Decode steps tell a fixed cost and one per sequence
(scheduling, input preparation, sampling, output processing per request); prefill steps,
when measured, add a cost per prefill chunk and per prefill token (the request's first
step and the per-token work outside the timed kernels: input preparation, embedding,
copies of activations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from infsim.core.fit import line_fit

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class OverheadFit:
    """Per-step overhead = fixed + per_seq · sequences + per_prefill_seq · prefill chunks
    + per_prefill_token · their new tokens (seconds)."""

    fixed_s: float
    per_seq_s: float = 0.0
    per_prefill_seq_s: float = 0.0
    per_prefill_token_s: float = 0.0

    def describe(self) -> str:
        text = f"{self.fixed_s * 1e3:.3f} ms + {self.per_seq_s * 1e6:.1f} µs per sequence"
        if self.per_prefill_seq_s or self.per_prefill_token_s:
            text += (f" + {self.per_prefill_seq_s * 1e3:.3f} ms per prefill chunk + "
                     f"{self.per_prefill_token_s * 1e6:.2f} µs per prefill token")  # fmt: skip
        return text


def fit_overhead(rows: pd.DataFrame) -> OverheadFit:
    """Least-squares fit of `step_overhead` rows. Decode rows (no `query_len`) give the
    fixed + per-sequence line; prefill rows (`query_len` > 1), when present, add a cost per
    prefill chunk and, with two or more distinct chunk lengths, per prefill token, fitted
    jointly with the line (their step has `batch_size` sequences too)."""
    b = rows["batch_size"].to_numpy(float)
    y = rows["time_s"].to_numpy(float)
    q = rows["query_len"].to_numpy(float) if "query_len" in rows else np.full_like(b, np.nan)
    prefill = np.nan_to_num(q, nan=1.0) > 1
    if not prefill.any():
        return OverheadFit(*line_fit(b, y))
    columns = {"fixed_s": np.ones_like(b)}
    if (~prefill).any():  # without decode rows a prefill chunk's cost is the fixed one
        columns["per_prefill_seq_s"] = np.where(prefill, b, 0.0)
    if np.unique(b[~prefill]).size >= 2:  # decode batch sizes enough to tell a slope
        columns["per_seq_s"] = b
    if np.unique(q[prefill]).size >= 2:  # chunk lengths enough to tell a per-token cost
        columns["per_prefill_token_s"] = np.where(prefill, b * q, 0.0)
    coef, *_ = np.linalg.lstsq(np.column_stack(list(columns.values())), y, rcond=None)
    return OverheadFit(**{name: float(c) for name, c in zip(columns, coef, strict=True)})
