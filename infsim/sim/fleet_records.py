"""What the fleet (`infsim.sim.fleet`) keeps about its replicas: members with their
lifecycle history, pools at run time, `fleet_timeline.parquet` rows, and the record
handed to the summary (`infsim.report.fleet`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pyarrow as pa

from infsim import arrays
from infsim.core.request import RequestState
from infsim.fleet.autoscaler import Autoscaler
from infsim.fleet.cold_start import ColdStart, ColdStartModel
from infsim.fleet.lifecycle import BILLED, LIVE, State
from infsim.fleet.spec import FailuresSpec
from infsim.scenario.pools import ResolvedPool
from infsim.sim.replica import Replica

FLEET_TIMELINE_SCHEMA = pa.schema(
    [
        ("time_s", pa.float64()),
        ("pool", pa.string()),
        ("num_provisioning", pa.int32()),
        ("num_loading", pa.int32()),
        ("num_starting", pa.int32()),
        ("num_serving", pa.int32()),
        ("num_draining", pa.int32()),
        ("num_idle", pa.int32()),
        ("num_waiting", pa.int32()),
        ("num_running", pa.int32()),
        ("num_gateway_queued", pa.int32()),
        ("kv_usage", pa.float64()),
        ("desired_replicas", pa.int32()),
        ("usd_per_hour", pa.float64()),
    ]
)


class Member:
    """One replica of a pool over its whole life (the engine exists once it serves)."""

    __slots__ = ("cold_start", "history", "member_id", "pool", "replica", "state")

    def __init__(self, member_id: int, pool: PoolRuntime, state: State, now: float) -> None:
        self.member_id = member_id
        self.pool = pool
        self.state = state
        self.history: list[tuple[float, State]] = [(now, state)]
        self.replica: Replica | None = None
        self.cold_start: ColdStart | None = None


@dataclass
class PoolRuntime:
    index: int
    pool: ResolvedPool
    cold: ColdStartModel
    autoscaler: Autoscaler | None
    members: list[Member] = field(default_factory=list)
    desired: int = 0
    scale_events: list[dict] = field(default_factory=list)
    last_submitted: int = 0

    @property
    def name(self) -> str:
        return self.pool.name

    def live(self) -> list[Member]:
        return [m for m in self.members if m.state in LIVE]


@dataclass
class FleetRecord:
    """What the fleet did, for the summary (`infsim.report.fleet`)."""

    pools: list[PoolRuntime]
    timeline: pa.Table
    failure_events: list[dict]
    num_losses: dict[int, int]  # request index → replicas lost under it (requeued or failed)
    failed: list[RequestState]
    max_gateway_queued: int
    num_gateway_queued: int
    failures: FailuresSpec | None
    dynamic: bool  # False: one fixed pool, no failures (billing is num_gpus × span)


class FleetTimeline:
    """`fleet_timeline.parquet`: one row per pool at each lifecycle change and tick."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def record(self, now: float, pool: PoolRuntime, num_gateway_queued: int) -> None:
        counts = [0] * len(State)
        waiting = running = idle = 0
        kv = 0.0
        for m in pool.members:
            counts[m.state] += 1
            if m.state == State.SERVING:
                s = m.replica.scheduler
                waiting += m.replica.num_waiting
                running += len(s.running)
                idle += not s.has_work() and not m.replica.inbox
                kv += kv_usage(m.replica)
        billed = sum(counts[s] for s in BILLED)
        rate = billed * pool.pool.gpus_per_replica * pool.pool.usd_per_gpu_hour
        serving = counts[State.SERVING]
        self._rows.append(
            (
                now,
                pool.name,
                *counts[: State.RELEASED],
                idle,
                waiting,
                running,
                num_gateway_queued,
                kv / serving if serving else math.nan,
                pool.desired,
                rate,
            )
        )

    def table(self, end_s: float, num_pools: int) -> pa.Table:
        """The rows up to `end_s`, then each pool's latest row again at `end_s` (the last
        `num_pools` rows recorded are one per pool, in pool order)."""
        rows = [r for r in self._rows if r[0] <= end_s]
        rows.extend((end_s, *last[1:]) for last in self._rows[-num_pools:])
        return arrays.from_rows(rows, FLEET_TIMELINE_SCHEMA)


def kv_usage(replica: Replica) -> float:
    kv = replica.scheduler.kv
    return 1.0 - kv.num_free_blocks / kv.num_total_blocks
