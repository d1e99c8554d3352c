"""Headline statistics of a trace (`Trace.summary()`, `infsim trace info`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc

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


def trace_summary(trace: Trace) -> dict[str, Any]:
    """Counts, time span, mean rate, length distributions and prefix-block reuse.

    `span_s` is last minus first arrival; `mean_rate_per_s` is requests / span_s (None
    when the span is 0). `num_unique_blocks` / `num_total_blocks` count prefix hash ids
    over all rows (total = with repeats), so 1 - unique/total is the block reuse ratio.
    """
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
