"""Fit quality of a calibration: leave-one-out error, coverage, and a scenario's fallbacks.

Leave-one-out: every interior measurement along an op's varying size (GEMM m, attention
KV or prompt length, collective bytes, tokens or sequences for small ops) is predicted
from its two neighbours with the same log-log interpolation the cost model uses, and
compared with the measurement. This is the error of the lookup *between* grid points, not
of the measurements themselves (their noise is in there too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from infsim.cost.table import COLLECTIVES, PER_TOKEN

AXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "gemm": ("m", ("dtype", "n", "k", "variant")),
    "attention_decode": (
        "kv_len",
        ("kv_dtype", "num_heads", "num_kv_heads", "head_dim", "batch_size", "variant"),
    ),
    "attention_prefill": (
        "query_len",
        ("kv_dtype", "num_heads", "num_kv_heads", "head_dim", "batch_size", "variant"),
    ),
    "moe": (
        "num_tokens",
        ("dtype", "hidden_size", "inter_size", "num_experts", "topk", "tp", "variant"),
    ),
    "lm_head": ("batch_size", ("variant",)),
    "sampler": ("batch_size", ("variant",)),
    "step": ("num_tokens", ("batch_size", "variant")),
    **dict.fromkeys(COLLECTIVES, ("message_bytes", ("dtype", "num_devices", "variant"))),
    **dict.fromkeys(PER_TOKEN, ("num_tokens", ("variant", "tp"))),
}

MEDIAN_WARN_PCT = 10.0
P95_WARN_PCT = 25.0


def leave_one_out(rows: pd.DataFrame) -> pd.DataFrame:
    """Per op: points tested, median and p95 absolute % error of neighbour interpolation."""
    out = []
    for op, group in rows.groupby("op"):
        if op not in AXES:
            continue
        x, keys = AXES[op]
        if op == "attention_prefill":
            group = group[group["query_len"] == group["kv_len"]]
        errs = _loo_errors(group, x, [k for k in keys if group[k].notna().any()])
        if errs.size == 0:
            out.append({"op": op, "points": 0, "median_abs_err_pct": np.nan,
                        "p95_abs_err_pct": np.nan})  # fmt: skip
            continue
        out.append(
            {
                "op": op,
                "points": int(errs.size),
                "median_abs_err_pct": float(np.median(errs) * 100),
                "p95_abs_err_pct": float(np.percentile(errs, 95) * 100),
            }
        )
    return pd.DataFrame(out)


def _loo_errors(group: pd.DataFrame, x: str, keys: list[str]) -> np.ndarray:
    g = group.dropna(subset=[x]).copy()
    g["_key"] = list(zip(*(g[k].astype(str) for k in keys), strict=True)) if keys else 0
    g = g.groupby(["_key", x], as_index=False)["time_s"].median()
    g = g.sort_values(["_key", x])
    lx, lt = np.log(g[x].to_numpy(float)), np.log(g["time_s"].to_numpy(float))
    same_prev = g["_key"].eq(g["_key"].shift(1)).to_numpy()
    same_next = g["_key"].eq(g["_key"].shift(-1)).to_numpy()
    interior = np.flatnonzero(same_prev & same_next)
    if interior.size == 0:
        return np.array([])
    x0, x1, xi = lx[interior - 1], lx[interior + 1], lx[interior]
    t0, t1 = lt[interior - 1], lt[interior + 1]
    pred = t0 + (t1 - t0) * (xi - x0) / (x1 - x0)
    return np.abs(np.exp(pred - lt[interior]) - 1.0)


def coverage(rows: pd.DataFrame) -> pd.DataFrame:
    """Per op: rows, dtypes, and the range of each shape column it uses."""
    out = []
    for op, group in rows.groupby("op"):
        ranges = []
        for col in group.columns:
            if col in ("op", "dtype", "kv_dtype", "variant", "time_s"):
                continue
            values = group[col].dropna()
            if not values.empty:
                lo, hi, n = int(values.min()), int(values.max()), values.nunique()
                ranges.append(f"{col} {lo}..{hi} ({n} values)")
        dtypes = ",".join(sorted(group["dtype"].dropna().unique())) or "-"
        out.append({"op": op, "rows": len(group), "dtypes": dtypes, "shapes": "; ".join(ranges)})
    return pd.DataFrame(out)


def verdicts(loo: pd.DataFrame) -> list[str]:
    """Loud warnings for ops whose held-out error is poor."""
    warn = []
    for r in loo.itertuples():
        if r.points and (
            r.median_abs_err_pct > MEDIAN_WARN_PCT or r.p95_abs_err_pct > P95_WARN_PCT
        ):
            warn.append(
                f"POOR FIT: {r.op}: held-out median error {r.median_abs_err_pct:.1f}% "
                f"(limit {MEDIAN_WARN_PCT:g}%), p95 {r.p95_abs_err_pct:.1f}% "
                f"(limit {P95_WARN_PCT:g}%)"
            )
    return warn


def report(rows: pd.DataFrame) -> dict[str, Any]:
    loo = leave_one_out(rows)
    return {"leave_one_out": loo, "coverage": coverage(rows), "warnings": verdicts(loo)}
