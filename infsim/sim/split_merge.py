"""Merging the workers' outputs of a run split by replica into the serial run's.

    requests   row i comes from the worker owning trace row i, in arrival (trace) order:
               the serial table, row for row
    timeline   rows interleaved by the simulated time each was recorded; a worker's rows
               keep their order (its events are ordered as in the serial run). Rows of
               different workers recorded at exactly the same time go in worker order
               (lower replica ids first): the one place the serial interleaving, decided
               by simpy's insertion order, is not reproduced; the rows are the same
    fleet      each fleet-timeline row rebuilt from the owning workers' replica states
               (`FleetTimeline.record` itself), at the serial run's times
    samples    ITL samples and decode runs appended part after part (the multiset is the
               serial one; percentiles and the exactly summed mean are unchanged)

Tables are read back from the workers' Parquet files a chunk at a time and appended to
the run's sinks (in memory, or streamed to the spool), so the merge holds one chunk.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infsim.metrics.recorder import REQUESTS_PER_CHUNK, ROWS_PER_BATCH
from infsim.metrics.sink import TableSink
from infsim.sim.fleet_records import FleetRecord, FleetTimeline
from infsim.sim.split_part import Moment, ReplicaState
from infsim.speculative.speculator import SpecDecodingStats
from infsim.speculative.summary import SpeculativeRun


class _Rows:
    """A Parquet file read front to back, `take(n)` rows at a time."""

    def __init__(self, path: Path) -> None:
        file = pq.ParquetFile(path)
        self.schema = file.schema_arrow
        self._batches = file.iter_batches(batch_size=ROWS_PER_BATCH)
        self._held: list[pa.Table] = []
        self._num_held = 0

    def take(self, n: int) -> pa.Table:
        while self._num_held < n:
            batch = next(self._batches)
            self._held.append(pa.Table.from_batches([batch]))
            self._num_held += batch.num_rows
        if not n:
            return self.schema.empty_table()
        table = pa.concat_tables(self._held) if len(self._held) > 1 else self._held[0]
        rest = table.slice(n)
        self._held = [rest] if rest.num_rows else []
        self._num_held -= n
        return table.slice(0, n)


def _inverse(order: np.ndarray) -> np.ndarray:
    out = np.empty_like(order)
    out[order] = np.arange(order.size)
    return out


def merge_requests(paths: list[Path], owner_of_request: np.ndarray, sink: TableSink) -> None:
    """The requests table in trace order, row i from worker `owner_of_request[i]`."""
    streams = [_Rows(p) for p in paths]
    total = owner_of_request.size
    for start in range(0, total, REQUESTS_PER_CHUNK):
        owners = owner_of_request[start : start + REQUESTS_PER_CHUNK]
        counts = np.bincount(owners, minlength=len(streams))
        joined = pa.concat_tables([s.take(int(c)) for s, c in zip(streams, counts, strict=True)])
        sink.append(joined.take(_inverse(np.argsort(owners, kind="stable"))))


def merge_timeline(paths: list[Path], stamps: list[np.ndarray], sink: TableSink) -> None:
    """The timeline rows of all workers by recording time (ties: worker order). Each
    window takes every worker's rows up to a cut time, so equal times never straddle two
    windows."""
    streams = [_Rows(p) for p in paths]
    pos = [0] * len(paths)
    while True:
        live = [w for w, s in enumerate(stamps) if pos[w] < s.size]
        if not live:
            return
        cut = min(stamps[w][min(pos[w] + ROWS_PER_BATCH, stamps[w].size) - 1] for w in live)
        ends = [int(np.searchsorted(s, cut, side="right")) for s in stamps]
        pieces = [s[a:b] for s, a, b in zip(stamps, pos, ends, strict=True)]
        order = np.argsort(np.concatenate(pieces), kind="stable")
        tables = [r.take(b - a) for r, a, b in zip(streams, pos, ends, strict=True)]
        sink.append(pa.concat_tables(tables).take(order))
        pos = ends


class _Replica:
    """A replica's recorded state in the shape `FleetTimeline.record` reads."""

    def __init__(self, state: ReplicaState) -> None:
        self.scheduler = self.kv = self
        self.running = range(state.num_running)
        self.num_waiting = state.num_waiting
        self.inbox = state.has_inbox
        self.num_free_blocks = state.num_free_blocks
        self.num_total_blocks = state.num_total_blocks
        self._has_work = state.has_work

    def has_work(self) -> bool:
        return self._has_work


def merge_fleet(
    record: FleetRecord,
    replica_ids: list[list[int]],
    moments: list[list[Moment]],
    owner_of_replica: np.ndarray,
    end_s: float,
) -> FleetRecord:
    """The fleet record of the whole run from one worker's (`record`, its pools' members
    with their replica ids) and every worker's moments. A worker records its pools once at
    t = 0, at each monitor tick until its own requests are done, and at its end; the
    serial run ticks until the last worker is done, and ends when the last worker ends.
    A replica's state after its worker's last tick is its state at that worker's end."""
    num_pools = len(record.pools)
    rows = [len(m) // num_pools for m in moments]  # per worker: start, ticks, end
    longest = moments[int(np.argmax(rows))]
    end_time_s = max(m[-1].time_s for m in moments)
    timeline = FleetTimeline()
    num_rows = max(rows)
    for k in range(num_rows):
        for p, pool in enumerate(record.pools):
            for member, rid in zip(pool.members, replica_ids[p], strict=True):
                w = int(owner_of_replica[rid])
                kk = k if k < rows[w] - 1 and k < num_rows - 1 else rows[w] - 1
                member.replica = _Replica(moments[w][kk * num_pools + p].states[rid])
            here = longest[k * num_pools + p]
            time_s = end_time_s if k == num_rows - 1 else here.time_s
            timeline.record(time_s, pool, here.num_gateway_queued)
    return replace(record, timeline=timeline.table(end_s, num_pools))


def merge_speculative(runs: list[SpeculativeRun | None]) -> SpeculativeRun | None:
    """Counters summed over workers (each built every replica's speculator; the idle ones
    count nothing); the proposer time summed in worker order."""
    present = [r for r in runs if r is not None]
    if not present:
        return None
    stats = SpecDecodingStats(present[0].stats.num_positions)
    draft_s = 0.0
    for r in present:
        stats.add(r.stats)
        draft_s += r.draft_time_s
    return SpeculativeRun(stats, draft_s, present[0].marginals)
