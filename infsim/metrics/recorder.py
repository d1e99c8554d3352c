"""Append-only run records; analysis happens afterwards (metrics/summary.py).

Per-step rows are values appended to one flat list (a step's 13 at a time), turned into
columnar batches every `ROWS_PER_BATCH` rows; a fast-forwarded run of k decode steps is one
row with num_steps = k. ITLs are a weighted sample: value `itl_s[i]` occurred `itl_count[i]`
times.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from infsim import arrays
from infsim.compiled import mypyc_attr
from infsim.core.batch import StepOutcome
from infsim.core.request import RequestState, Status
from infsim.metrics.requests import requests_table
from infsim.metrics.sink import TableSink

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
NUM_STEP_COLUMNS = len(StepRow._fields)


_NO_FLOATS = np.empty(0, dtype=np.float64)
_NO_INTS = np.empty(0, dtype=np.int64)

ROWS_PER_BATCH = 65_536
REQUESTS_PER_CHUNK = 16_384
ENDED = frozenset({Status.FINISHED, Status.REJECTED, Status.FAILED})
_SAMPLE_ARRAYS = ("itl_s", "itl_count", "_run_ends", "_run_starts", "_run_steps", "_run_seqs")


ExtraColumns = Callable[[list[RequestState]], dict[str, pa.Array]]
"""Columns a run adds to the requests table, given a chunk's requests (disaggregation's
prefill/transfer columns: `infsim.disagg.outputs`)."""


class RunSamples(NamedTuple):
    """A recorder's ITL samples and fast-forwarded decode runs as arrays (`Recorder.samples`),
    to move them between processes (a run split by replica: `infsim.sim.split_run`)."""

    itl_s: np.ndarray
    itl_count: np.ndarray
    run_ends: np.ndarray
    run_starts: np.ndarray
    run_steps: np.ndarray
    run_seqs: np.ndarray


@mypyc_attr(allow_interpreted_subclasses=True)  # split runs' StampedRecorder
class Recorder:
    """Collects requests, engine steps and ITL samples of one simulation.

    The requests and timeline tables go to two `TableSink`s: in memory, or, given a spool
    directory, streamed to `requests.parquet` and `timeline.parquet` there as they are
    recorded, so memory stays flat in the run's length."""

    def __init__(self, spool_dir: Path | None = None) -> None:
        self.extra_columns: ExtraColumns | None = None
        spool = (lambda name: spool_dir / name) if spool_dir is not None else (lambda _: None)
        self.requests = TableSink(None, spool("requests.parquet"))
        self.steps = TableSink(TIMELINE_SCHEMA, spool("timeline.parquet"))
        # Requests in arrival order: the leading ones that have ended are turned into
        # requests-table chunks every REQUESTS_PER_CHUNK arrivals and let go, so a long
        # trace does not hold every request object to the end.
        self._live: list[RequestState] = []
        self._next_flush = REQUESTS_PER_CHUNK
        self._latest_finish_s = 0.0  # of the flushed requests
        self.indices = array("q")  # every request's trace index, in arrival order
        # Steps: each row's values appended to one flat list (no object per row), turned
        # into a columnar Arrow batch every ROWS_PER_BATCH rows (~70 bytes a row then).
        self._row_values: list[float] = []
        self._batch_values = ROWS_PER_BATCH * NUM_STEP_COLUMNS
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
        return self.requests.num_rows + len(self._live)

    def _chunk(self, requests: list[RequestState]) -> pa.Table:
        table = requests_table(requests)
        if self.extra_columns is not None:
            for name, column in self.extra_columns(requests).items():
                table = table.append_column(name, column)
        return table

    def _flush_ended(self) -> None:
        """Turn the leading requests that have ended into a table chunk (arrival order is
        kept: a request still in flight holds back the ones behind it)."""
        live = self._live
        n = 0
        while n < len(live) and live[n].status in ENDED:
            n += 1
        if n:
            ended = live[:n]
            self._latest_finish_s = max(self._latest_finish_s, _latest_finish_s(ended))
            self.requests.append(self._chunk(ended))
            del live[:n]
        self._next_flush = len(live) + REQUESTS_PER_CHUNK

    def finish(self) -> None:
        """The run is over: the requests still held and the last steps go to the tables,
        which are closed (a streamed file gets its footer)."""
        if self._live or not self.requests.num_rows:  # an empty run still has a schema
            self._latest_finish_s = max(self._latest_finish_s, _latest_finish_s(self._live))
            self.requests.append(self._chunk(self._live))
            self._live = []
        if self._row_values:
            self.steps.append(self._batch(self._row_values))
            self._row_values = []
        self.requests.close()
        self.steps.close()

    def requests_table(self, columns: list[str] | None = None) -> pa.Table:
        """Every request that arrived, one row each in arrival order (`REQUESTS_SCHEMA` and
        any extra columns), or only `columns`, after `finish()`."""
        return self.requests.table(columns)

    def latest_finish_s(self) -> float:
        """The last request end time (0 when none ended)."""
        return max(self._latest_finish_s, _latest_finish_s(self._live))

    def on_step(self, row: StepRow | tuple) -> None:
        """One engine step (or a fast-forwarded run of identical ones): a `StepRow`, or a
        plain tuple of its fields in order (cheaper to build)."""
        values = self._row_values
        values += row
        self.num_steps += row[3]  # num_steps
        if len(values) >= self._batch_values:
            self.steps.append(self._batch(values))
            self._row_values = []

    def on_decode_run(
        self, start_s: float, ends_s: list[float] | np.ndarray, num_steps: int, num_seqs: int
    ) -> None:
        """A run of `num_steps` decode steps of `num_seqs` requests (one token each); its
        step ends a list, or a float64 array (a long run: copied as bytes)."""
        ends = ends_s if num_steps == len(ends_s) else ends_s[:num_steps]
        if isinstance(ends, list):  # array.fromlist: half of extend's time per float
            self._run_ends.fromlist(ends)
        else:  # (an array method: no numpy function dispatch)
            self._run_ends.frombytes(ends.astype(np.float64, copy=False).tobytes())
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
        return self.steps.num_rows + len(self._row_values) // NUM_STEP_COLUMNS

    @staticmethod
    def _batch(values: list[float]) -> pa.RecordBatch:
        """Flat row values → a columnar batch. Every value passes through float64, exact
        for the integer columns (counts far below 2⁵³); they are then cast to their type
        with Arrow's checked cast (an out-of-range or fractional count raises)."""
        rows = np.fromiter(values, dtype=np.float64, count=len(values))
        rows = rows.reshape(-1, NUM_STEP_COLUMNS)
        columns = []
        for j, field in enumerate(TIMELINE_SCHEMA):
            columns.append(arrays.array(rows[:, j], field.type))
        return pa.RecordBatch.from_arrays(columns, schema=TIMELINE_SCHEMA)

    def timeline_table(self, columns: list[str] | None = None) -> pa.Table:
        """Every step row (`TIMELINE_SCHEMA`), or only `columns`, after `finish()`."""
        return self.steps.table(columns)

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

    def release_samples(self) -> None:
        """The ITL samples and decode runs have been summarised: let their memory go."""
        for name in _SAMPLE_ARRAYS:
            setattr(self, name, array(getattr(self, name).typecode))

    def samples(self) -> RunSamples:
        """The ITL samples and decode runs recorded so far, as arrays (copies)."""
        return RunSamples(*(np.array(getattr(self, name)) for name in _SAMPLE_ARRAYS))

    def add_samples(self, samples: RunSamples) -> None:
        """Append another recorder's samples and decode runs (a split run's parts, merged):
        the ITL multiset and each run's gaps are those of the parts."""
        for name, values in zip(_SAMPLE_ARRAYS, samples, strict=True):
            target = getattr(self, name)
            dtype = np.float64 if target.typecode == "d" else np.int64
            target.frombytes(np.ascontiguousarray(values, dtype=dtype).tobytes())

    def itl_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """All ITL samples as (gap_s, count) arrays: the per-step samples, then each
        fast-forwarded run's step gaps (end − previous end; a run's first step from its
        start), each counted once per sequence of the run. Built in two arrays of the
        samples' length, no intermediate copies (it runs at the memory peak of a long run)."""
        num_other = len(self.itl_s)
        ends = np.frombuffer(self._run_ends, dtype=np.float64) if self._run_ends else _NO_FLOATS
        steps = np.frombuffer(self._run_steps, dtype=np.int64) if self._run_steps else _NO_INTS
        gaps = np.empty(num_other + ends.size, dtype=np.float64)
        counts = np.empty(gaps.size, dtype=np.int64)
        if num_other:
            gaps[:num_other] = np.frombuffer(self.itl_s, dtype=np.float64)
            counts[:num_other] = np.frombuffer(self.itl_count, dtype=np.int64)
        if ends.size:
            run_gaps = gaps[num_other:]
            np.subtract(ends[1:], ends[:-1], out=run_gaps[1:])
            first = np.cumsum(steps) - steps  # index of each run's first step
            run_gaps[first] = ends[first] - np.frombuffer(self._run_starts, dtype=np.float64)
            seqs = np.frombuffer(self._run_seqs, dtype=np.int64)
            counts[num_other:] = np.repeat(seqs, steps)
        return gaps, counts


def _latest_finish_s(requests: list[RequestState]) -> float:
    """The latest end time among `requests` (unset times are < 0: callers take the max
    with the flushed requests' latest, which starts at 0)."""
    return max((r.finish_s for r in requests), default=0.0)
