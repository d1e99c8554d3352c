"""Moving-block bootstrap of a trace's arrival process: another day of the same traffic.

A trace is one sample of its arrival process, and a p99 depends on its bursts, which a
request-by-request resample would destroy. The moving-block bootstrap (Künsch 1989) keeps
them: the trace's span T (first arrival at 0 to the last, plus one mean gap so the last
request has room) is cut into B = `num_blocks` slots of length L = T / B; slot k is filled
with the requests of a window [u_k, u_k + L) whose start u_k is drawn uniformly from
[0, T − L] (windows overlap and may repeat), shifted to start at k·L. The result spans
the same time with about as many requests; its bursts are the trace's own, in a new order
and mix. Requests keep their lengths, prefix ids and sessions (a repeated window repeats
its prefixes: more cache hits than a fresh day would give, a caveat for prefix-heavy
traces); ids are renumbered 0..n−1.

A closed-loop trace (every arrival at 0, `vllm bench serve --max-concurrency`) has no
arrival process to cut: its requests are resampled with replacement instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from infsim.workload.trace import TRACE_SCHEMA, Trace

DEFAULT_NUM_BLOCKS = 10


def block_indices(
    arrival_s: np.ndarray, rng: np.random.Generator, num_blocks: int = DEFAULT_NUM_BLOCKS
) -> tuple[np.ndarray, np.ndarray]:
    """(row indices into the trace, their new arrival times), in arrival order."""
    n = arrival_s.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    span = float(arrival_s[-1])
    if span <= 0:  # closed loop: all at t = 0
        return np.sort(rng.integers(0, n, n)), np.zeros(n)
    span += span / max(n - 1, 1)  # one mean gap after the last arrival
    length = span / num_blocks
    starts = rng.uniform(0.0, span - length, num_blocks)
    rows, times = [], []
    for k, u in enumerate(starts):
        lo, hi = np.searchsorted(arrival_s, [u, u + length], "left")
        rows.append(np.arange(lo, hi))
        times.append(k * length + (arrival_s[lo:hi] - u))
    return np.concatenate(rows), np.concatenate(times)


def resample_trace(
    trace: Trace, rng: np.random.Generator, num_blocks: int = DEFAULT_NUM_BLOCKS
) -> Trace:
    """A bootstrap replicate of `trace` (module doc); at least one request."""
    idx, arrival_s = block_indices(trace.arrival_s, rng, num_blocks)
    if idx.size == 0:  # every window fell in a gap: keep the first request
        idx, arrival_s = np.zeros(1, dtype=np.int64), np.zeros(1)
    table = trace.table.take(pa.array(idx))
    table = table.set_column(
        table.schema.get_field_index("arrival_s"),
        TRACE_SCHEMA.field("arrival_s"),
        pa.array(np.maximum.accumulate(np.maximum(arrival_s, 0.0)), pa.float64()),
    )
    table = table.set_column(
        table.schema.get_field_index("request_id"),
        TRACE_SCHEMA.field("request_id"),
        pa.array(np.arange(idx.size), pa.int64()),
    )
    return Trace(table, trace.hash_block_size_tokens, trace.source, trace.notes)
