"""One worker's share of a run split by replica: what `simulate(..., part=)` plugs in.

The worker builds the whole fleet (every replica with its own id, so per-replica seeds
are the serial run's) but submits only the requests of its own replicas; the others stay
idle and cost no events. Arrivals it does not own still pass their times, so the event
order among its replicas' events is the serial run's (simpy orders ties by insertion).

What the merge needs besides the usual records (`infsim.sim.split_merge`):

- the simulated time at which each timeline row was recorded (`StampedRecorder`), to
  interleave the workers' rows in event order;
- each owned replica's state at every fleet-timeline row (`ProbedTimeline`), to rebuild
  the rows, which count every replica of a pool.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import simpy

from infsim.core.request import RequestState
from infsim.metrics.recorder import Recorder, StepRow
from infsim.sim.fleet import Fleet
from infsim.sim.fleet_records import FleetTimeline, PoolRuntime


class PrecomputedRouter:
    """Routes each request to the replica the serial router chose for its trace row."""

    def __init__(self, replica_of: np.ndarray) -> None:
        self.replica_of = replica_of

    def route(self, request: RequestState, view: Any, now: float) -> int:
        return int(self.replica_of[request.index])


class StampedRecorder(Recorder):
    """A recorder that also keeps the simulated time of each timeline row's recording."""

    def __init__(self, env: simpy.Environment, spool_dir: Path | None) -> None:
        super().__init__(spool_dir)
        self._env = env
        self.stamps = array("d")

    def on_step(self, row: StepRow) -> None:
        self.stamps.append(self._env.now)
        super().on_step(row)


class ReplicaState(NamedTuple):
    """A replica as a fleet-timeline row reads it (`FleetTimeline.record`)."""

    num_running: int
    has_work: bool
    num_waiting: int
    has_inbox: bool
    num_free_blocks: int
    num_total_blocks: int


class Moment(NamedTuple):
    """One fleet-timeline row as recorded: time, pool, gateway queue, and the state of
    each replica this worker owns in that pool (replica id → state)."""

    time_s: float
    pool_index: int
    num_gateway_queued: int
    states: dict[int, ReplicaState]


def replica_state(replica: Any) -> ReplicaState:
    s = replica.scheduler
    return ReplicaState(len(s.running), s.has_work(), replica.num_waiting, bool(replica.inbox),
                        s.kv.num_free_blocks, s.kv.num_total_blocks)  # fmt: skip


class ProbedTimeline:
    """The fleet's timeline, also noting the owned replicas' state at each row."""

    def __init__(self, inner: FleetTimeline, owned: range) -> None:
        self.inner = inner
        self.owned = owned
        self.moments: list[Moment] = []

    def note(self, now: float, pool: PoolRuntime, num_gateway_queued: int) -> None:
        states = {
            m.replica.replica_id: replica_state(m.replica)
            for m in pool.members
            if m.replica is not None and m.replica.replica_id in self.owned
        }
        self.moments.append(Moment(now, pool.index, num_gateway_queued, states))

    def record(self, now: float, pool: PoolRuntime, num_gateway_queued: int) -> None:
        self.inner.record(now, pool, num_gateway_queued)
        self.note(now, pool, num_gateway_queued)

    def table(self, end_s: float, num_pools: int) -> pa.Table:
        return self.inner.table(end_s, num_pools)


class SplitPart:
    """The engine hook (`simulate(part=)`): the router, the requests this worker owns and
    what it records for the merge."""

    def __init__(self, replica_of: np.ndarray, owner_of_request: np.ndarray, index: int,
                 replicas: range) -> None:  # fmt: skip
        self.router = PrecomputedRouter(replica_of)
        self._owner_of_request = owner_of_request
        self._index = index
        self.num_requests = int(np.count_nonzero(owner_of_request == index))
        self.replicas = replicas
        self.stamped: StampedRecorder | None = None
        self.timeline: ProbedTimeline | None = None

    @property
    def worker(self) -> int:
        """This worker's index among the run's workers."""
        return self._index

    @property
    def owned(self) -> list[bool]:
        """Per trace row, whether this worker submits it (a list: fast per-row reads; built
        in the worker, not in the parent that forks it)."""
        return (self._owner_of_request == self._index).tolist()

    def recorder(self, env: simpy.Environment, spool_dir: Path | None) -> Recorder:
        self.stamped = StampedRecorder(env, spool_dir)
        return self.stamped

    def attach(self, fleet: Fleet) -> None:
        """Probe the fleet timeline; the rows the fleet recorded while it was built (one
        per pool, t = 0) get their states now, as nothing has run yet."""
        self.timeline = ProbedTimeline(fleet.timeline, self.replicas)
        for pool in fleet.pools:
            self.timeline.note(0.0, pool, len(fleet.gateway))
        fleet.timeline = self.timeline
