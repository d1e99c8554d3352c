"""Cost-model protocol: how long one engine step takes.

A cost model prices a `Batch` (tokens per request on top of their cached context) on one
replica. The calibrated per-kernel tables (issue #3) and the analytic roofline implement
the same three methods: `step_time_s` (one step), `op_times_s` (the same step split by
op, for reports and calibration residuals) and `decode_run_times_s`, which prices a run
of pure-decode steps in one vectorised call: step j (0-based) has `num_seqs` requests
each decoding one token with `sum_context_tokens + j * num_seqs` KV tokens in total; it
must equal calling `step_time_s` on each of those steps (bit for bit: the fast-forward is
exact), which the tests check. It returns a list for a short run (there numpy's per-call
overhead would dominate) or a float64 array for a long one (`roofline.NUMPY_RUN` steps
or more: the replica sums, streams and records it as an array, no Python float per step;
it may modify the array).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from infsim.core.batch import Batch


class CostModel(Protocol):
    def step_time_s(self, batch: Batch) -> float: ...

    def decode_run_times_s(
        self, num_seqs: int, sum_context_tokens: int, num_steps: int
    ) -> list[float] | np.ndarray: ...

    def op_times_s(self, batch: Batch) -> dict[str, float]: ...


def attention_work(batch: Batch) -> tuple[int, int]:
    """(query·key pairs under the causal mask, KV tokens read) summed over the batch.

    A request computing q new tokens on top of c cached ones has q·c + q(q+1)/2 pairs and
    reads c + q KV tokens per layer. Decode (q = 1): both are c + 1. The batch's running
    sums when they cover every row (the scheduler's batches), else a pass over the rows.
    """
    if batch.attn_rows == len(batch.num_new_tokens):
        return batch.attn_pairs, batch.attn_kv_tokens
    pairs = kv_tokens = 0
    for q, c in zip(batch.num_new_tokens, batch.num_context_tokens, strict=True):
        pairs += q * c + q * (q + 1) // 2
        kv_tokens += c + q
    return pairs, kv_tokens
