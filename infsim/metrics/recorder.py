"""Append-only run records; analysis happens afterwards (metrics/summary.py).

Per-step rows are plain tuples (one append per step), turned into columns once at the
end; a fast-forwarded run of k decode steps is one row with num_steps = k. ITLs are a weighted
sample: value `itl_s[i]` occurred `itl_count[i]` times.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from infsim.core.batch import StepOutcome
from infsim.core.request import RequestState, Status
from infsim.metrics.requests import requests_table

TIMELINE_SCHEMA = pa.schema(
    [
        ("replica_id", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("num_steps", pa.int32()),
        ("num_batched_tokens", pa.int32()),
        ("num_running", pa.int32()),
        ("num_waiting", pa.int32()),
        ("num_preempted", pa.int32()),
        ("kv_used_blocks", pa.int32()),
        ("kv_usage", pa.float64()),
        ("num_draft_tokens", pa.int32()),  # speculative drafts verified in the step
        ("num_accepted_tokens", pa.int32()),  # of which accepted (0 without speculation)
        ("num_seqs", pa.int32()),  # sequences the step computed (its batch width)
    ]
)


class StepRow(NamedTuple):
    """One engine step (or a fast-forwarded run of `num_steps` identical ones) as the
    timeline records it: the `TIMELINE_SCHEMA` columns, in order. Counts of running,
    waiting and KV blocks are after the step; `num_seqs` is the step's own width."""

    replica_id: int
    start_s: float
    end_s: float
    num_steps: int
    num_batched_tokens: int
    num_running: int
    num_waiting: int
    num_preempted: int
    kv_used_blocks: int
    kv_usage: float
    num_draft_tokens: int
    num_accepted_tokens: int
    num_seqs: int


assert StepRow._fields == tuple(TIMELINE_SCHEMA.names)  # one order for both


ROWS_PER_BATCH = 65_536
REQUESTS_PER_CHUNK = 16_384
ENDED = frozenset({Status.FINISHED, Status.REJECTED, Status.FAILED})


class Recorder:
    """Collects requests, engine steps and ITL samples of one simulation."""

    def __init__(self) -> None:
        # Requests in arrival order: the leading ones that have ended are turned into
        # requests-table chunks every REQUESTS_PER_CHUNK arrivals and let go, so a long
        # trace does not hold every request object to the end.
        self._live: list[RequestState] = []
        self._request_chunks: list[pa.Table] = []
        self._num_flushed = 0
        self._next_flush = REQUESTS_PER_CHUNK
        self.indices = array("q")  # every request's trace index, in arrival order
        # Steps: rows in a list, turned into columnar Arrow batches every ROWS_PER_BATCH
        # (a row object costs ~300 bytes, a columnar row ~70: memory per step stays small).
        self._rows: list[StepRow] = []
        self._batches: list[pa.RecordBatch] = []
        self._num_batched_rows = 0
        # Samples and run records in typed arrays (8 bytes a value, not a Python object).
        self.itl_s = array("d")
        self.itl_count = array("q")
        # Fast-forwarded runs: step end times, flat, with each run's start/length/width;
        # their gaps are computed once at the end (same floats as per-step end − start).
        self._run_ends = array("d")
        self._run_starts = array("d")
        self._run_steps = array("q")
        self._run_seqs = array("q")
        self.num_steps = 0
        self.num_done = 0  # requests finished or rejected (progress reporting)

    def on_request(self, req: RequestState) -> None:
        self._live.append(req)
        self.indices.append(req.index)
        if len(self._live) >= self._next_flush:
            self._flush_ended()

    @property
    def num_requests(self) -> int:
        """Requests that have arrived."""
        return self._num_flushed + len(self._live)

    def _flush_ended(self) -> None:
        """Turn the leading requests that have ended into a table chunk (arrival order is
        kept: a request still in flight holds back the ones behind it)."""
        live = self._live
        n = 0
        while n < len(live) and live[n].status in ENDED:
            n += 1
        if n:
            self._request_chunks.append(requests_table(live[:n]))
            self._num_flushed += n
            del live[:n]
        self._next_flush = len(live) + REQUESTS_PER_CHUNK

    def requests_table(self) -> pa.Table:
        """Every request that arrived, one row each in arrival order (`REQUESTS_SCHEMA`), in
        the chunks it was flushed in (not combined: that would copy every column at the
        run's memory peak; Parquet writes the same bytes either way)."""
        chunks = [*self._request_chunks, requests_table(self._live)]
        return pa.concat_tables(chunks)

    def latest_finish_s(self) -> float:
        """The last request end time (0 when none ended)."""
        latest = max((r.finish_s for r in self._live), default=0.0)
        for chunk in self._request_chunks:
            values = chunk.column("finish_s").to_numpy(zero_copy_only=False)
            if values.size and not np.isnan(values).all():
                latest = max(latest, float(np.nanmax(values)))
        return latest

    def on_step(self, row: StepRow) -> None:
        """One engine step (or a fast-forwarded run of identical ones)."""
        self._rows.append(row)
        self.num_steps += row.num_steps
        if len(self._rows) >= ROWS_PER_BATCH:
            self._batches.append(self._batch(self._rows))
            self._num_batched_rows += len(self._rows)
            self._rows = []

    def on_decode_run(
        self, start_s: float, ends_s: list[float], num_steps: int, num_seqs: int
    ) -> None:
        """A run of `num_steps` decode steps of `num_seqs` requests (one token each)."""
        self._run_ends.extend(ends_s[:num_steps])
        self._run_starts.append(start_s)
        self._run_steps.append(num_steps)
        self._run_seqs.append(num_seqs)

    def on_request_end(self) -> None:
        """A client request ended (finished, rejected or failed): the engine's one place
        for it (`infsim.sim.engine`), so a disaggregated prefill's copy never counts."""
        self.num_done += 1

    def on_outcome(self, outcome: StepOutcome) -> None:
        if not (outcome.itl_step_s or outcome.itl_other_s):
            return
        self.itl_s.extend(outcome.itl_step_s)
        self.itl_count.extend(outcome.itl_step_count)
        self.itl_s.extend(outcome.itl_other_s)
        self.itl_count.extend([1] * len(outcome.itl_other_s))

    @property
    def num_rows(self) -> int:
        return self._num_batched_rows + len(self._rows)

    @staticmethod
    def _batch(rows: list[StepRow]) -> pa.RecordBatch:
        columns = list(zip(*rows, strict=True)) or [[] for _ in TIMELINE_SCHEMA.names]
        return pa.RecordBatch.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, TIMELINE_SCHEMA, strict=True)],
            schema=TIMELINE_SCHEMA,
        )

    def timeline_table(self) -> pa.Table:
        batches = [*self._batches, self._batch(self._rows)]
        return pa.Table.from_batches(batches, schema=TIMELINE_SCHEMA)

    def decode_runs_by_width(self) -> dict[int, tuple[int, float]]:
        """Fast-forwarded decode runs that ran, per number of sequences: (steps, seconds
        from each run's start to its last step's end), summed over runs and replicas."""
        if not self._run_steps:
            return {}
        steps = np.asarray(self._run_steps, dtype=np.int64)
        last = np.cumsum(steps) - 1
        seconds = np.asarray(self._run_ends, dtype=np.float64)[last] - np.asarray(
            self._run_starts, dtype=np.float64
        )
        widths, inverse = np.unique(np.asarray(self._run_seqs, dtype=np.int64),
                                    return_inverse=True)  # fmt: skip
        n = np.bincount(inverse, weights=steps)
        s = np.bincount(inverse, weights=seconds)
        return {int(b): (int(k), float(t)) for b, k, t in zip(widths, n, s, strict=True)}

    def itl_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """All ITL samples as (gap_s, count) arrays."""
        ends = np.asarray(self._run_ends, dtype=np.float64)
        steps = np.asarray(self._run_steps, dtype=np.int64)
        prev = np.empty_like(ends)
        prev[1:] = ends[:-1]
        first = np.cumsum(steps) - steps  # index of each run's first step
        prev[first] = self._run_starts
        run_gaps = ends - prev
        run_counts = np.repeat(np.asarray(self._run_seqs, dtype=np.int64), steps)
        gaps = np.concatenate([np.asarray(self.itl_s, dtype=np.float64), run_gaps])
        counts = np.concatenate([np.asarray(self.itl_count, dtype=np.int64), run_counts])
        return gaps, counts
