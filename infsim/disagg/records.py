"""What a disaggregated run did, per request and per replica: the records the simpy wiring
(`infsim.sim.disagg`) fills and the report (`infsim.disagg.outputs`) reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from infsim.disagg.spec import DisaggregationSpec
from infsim.parallel.network import Link


@dataclass
class Handoff:
    """One request's path through a disaggregated deployment (times in seconds)."""

    mode: str  # "remote" (prefill pool → decode pool), "local" (decode prefills), "mixed"
    prefill_replica_id: int | None = None
    decode_replica_id: int | None = None
    prefill_end_s: float | None = None  # the prefill sampled the first token
    reserved_s: float | None = None  # decode blocks allocated: the transfer is queued
    transfer_start_s: float | None = None
    transfer_end_s: float | None = None
    kv_bytes: float | None = None


@dataclass
class DisaggRun:
    """What disaggregation did, for the outputs (`infsim.disagg.outputs`)."""

    spec: DisaggregationSpec
    handoffs: dict[int, Handoff]  # request index → path
    timeline: list[tuple]  # (time_s, queued, transferring, awaiting decode blocks, held)
    roles: dict[int, str]  # replica id → role
    pool_of: dict[int, str]  # replica id → pool name
    links: dict[str, Link] = field(default_factory=dict)  # "prefill→decode" pools → link
