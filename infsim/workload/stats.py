"""Headline statistics of a trace (`Trace.summary()`, `infsim trace info`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from infsim.workload.trace import Trace


def _distribution(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "mean": float(values.mean()),
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }


BURST_WINDOWS_S = (1.0, 10.0, 60.0)
"""Windows of the peak-rate figures: a second (what queues see), ten seconds, a minute
(what an autoscaler sees)."""


def burstiness(arrival_s: np.ndarray) -> dict[str, Any]:
    """How bursty the arrivals are: the coefficient of variation of the inter-arrival gaps
    (1 for Poisson, 0 for evenly spaced, above 1 bursty) and, per window, the peak
    arrival rate (the most requests in any window starting at an arrival, over its length)
    and its ratio to the mean rate. None where there are too few arrivals."""
    out: dict[str, Any] = {"interarrival_cv": None}
    gaps = np.diff(arrival_s)
    if gaps.size >= 2 and gaps.mean() > 0:
        out["interarrival_cv"] = float(gaps.std() / gaps.mean())
    span_s = float(arrival_s[-1] - arrival_s[0]) if arrival_s.size else 0.0
    mean = arrival_s.size / span_s if span_s > 0 else None
    for window_s in BURST_WINDOWS_S:
        key = f"peak_rate_per_s_{window_s:g}s"
        if mean is None or span_s < window_s:
            out[key] = out[f"peak_to_mean_{window_s:g}s"] = None
            continue
        ends = np.searchsorted(arrival_s, arrival_s + window_s, side="left")
        peak = float((ends - np.arange(arrival_s.size)).max()) / window_s
        out[key] = peak
        out[f"peak_to_mean_{window_s:g}s"] = peak / mean
    return out


def trace_summary(trace: Trace) -> dict[str, Any]:
    """Counts, time span, mean rate, length distributions and prefix-block reuse.

    `span_s` is last minus first arrival; `mean_rate_per_s` is requests / span_s (None
    when the span is 0). `num_unique_blocks` / `num_total_blocks` count prefix hash ids
    over all rows (total = with repeats), so 1 - unique/total is the block reuse ratio.
    Burstiness: `burstiness`.
    """
    import pyarrow.compute as pc

    arrival_s = trace.arrival_s
    span_s = float(arrival_s[-1] - arrival_s[0]) if trace.num_requests else 0.0
    hash_ids = trace.table.column("prefix_hash_ids")
    flat = pc.list_flatten(hash_ids)
    num_with_prefix = trace.num_requests - hash_ids.null_count
    sessions = trace.table.column("session_id")
    return {
        "source": trace.source,
        "num_requests": trace.num_requests,
        "first_arrival_s": float(arrival_s[0]) if trace.num_requests else 0.0,
        "duration_s": trace.duration_s,
        "span_s": span_s,
        "mean_rate_per_s": trace.num_requests / span_s if span_s > 0 else None,
        **burstiness(np.asarray(arrival_s, dtype=np.float64)),
        "num_prompt_tokens": _distribution(trace.num_prompt_tokens),
        "num_output_tokens": _distribution(trace.num_output_tokens),
        "hash_block_size_tokens": trace.hash_block_size_tokens,
        "fraction_with_prefix_ids": num_with_prefix / trace.num_requests
        if trace.num_requests
        else 0.0,
        "num_total_blocks": len(flat),
        "num_unique_blocks": len(pc.unique(flat)),
        "num_sessions": len(pc.unique(sessions.drop_null())),
        "notes": list(trace.notes),
    }
