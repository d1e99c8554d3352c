"""Which runs may be split by replica, and how: the serial router's assignment, replayed.

A fleet's replicas share nothing but the router between routing decisions: each has its
own scheduler, KV cache, speed-noise and acceptance streams (seeded by replica id), and
its requests never leave it. When the router's choice does not read replica state, the
choice of every request can be computed before the simulation by calling the router over
the trace in arrival order (the same calls and generator draws as the serial run). The
replicas are then split into groups, one worker process each, which simulate only their
own requests (`infsim.sim.split_run`); the merged outputs are the serial run's.

    trace ──replay router──► replica per request ──partition──► groups of replicas
                                                                (balanced by requests)

Eligible (`split_refusal` says why not otherwise):

- a router whose choice ignores the cluster view (`STATE_FREE_ROUTERS`): round robin and
  random. Load-aware ones (least outstanding requests/tokens, least KV usage, power of
  two, prefix aware) read the replicas' queues and caches at each arrival, which depend
  on every earlier request: they cannot be replayed ahead;
- a static fleet: no autoscaling, no failures or spot interruptions, every pool with its
  replicas from t = 0 (several pools are fine: the router sees one list of replicas);
- no disaggregation (a prefill replica hands requests to a decode one);
- an open-loop workload (a closed-loop client's sends wait on completions anywhere);
- at least 2 replicas and 2 jobs.

Pure: no simpy, no processes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from infsim.routing.load_aware import build_router
from infsim.scenario.run import ResolvedRun
from infsim.workload.trace import Trace

STATE_FREE_ROUTERS = {
    "round_robin": "replica i, i+1, ... in turn",
    "random": "a uniform draw from the router's own generator",
}
"""Routers whose choice depends only on the request count so far and their own state
(never on the `ClusterView`'s load): their assignment can be replayed before the run."""


def split_refusal(run: ResolvedRun, replica_jobs: int) -> str | None:
    """Why this run cannot be simulated split by replica, or None when it can."""
    num_replicas = sum(p.spec.replicas for p in run.pools)
    kind = run.router.kind
    if replica_jobs < 2:
        return f"replica_jobs = {replica_jobs} (at least 2 to split)"
    if kind not in STATE_FREE_ROUTERS:
        routers = " or ".join(STATE_FREE_ROUTERS)
        return (f"router {kind} reads replica load at each arrival; only {routers} "
                "can be replayed ahead")  # fmt: skip
    if run.autoscaling is not None:
        return "autoscaling changes the replica set during the run"
    spot = any(p.spec.pricing.spot_interruptions_per_hour for p in run.pools)
    if run.failures is not None or spot:
        return "failures or spot interruptions change the replica set during the run"
    if run.disaggregation is not None:
        return "disaggregated prefill hands requests between replicas"
    if run.workload.max_concurrency is not None:
        return "a closed-loop client (workload.max_concurrency) couples all replicas"
    if any(p.spec.replicas == 0 for p in run.pools):
        return "a pool without initial replicas"
    if num_replicas < 2:
        return f"{num_replicas} replica (at least 2 to split)"
    return None


class _CountView:
    """The cluster view a state-free router is replayed against: the replica count only.
    Any other read is a bug (a router that reads load is not state-free)."""

    def __init__(self, num_replicas: int) -> None:
        self.num_replicas = num_replicas

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"a replayed router read {name}: it is not state-free")


def assign_replicas(run: ResolvedRun, trace: Trace) -> np.ndarray:
    """The replica index (= replica id in a static fleet) the serial run routes each trace
    row to: the scenario's router, built with the same seed, called once per request in
    arrival order, as `Fleet.submit` calls it. The router reads neither the request nor
    the time (state-free), so neither is passed."""
    router = build_router(run.router, run.seed)
    view = _CountView(sum(p.spec.replicas for p in run.pools))
    route = router.route
    out = np.empty(trace.num_requests, dtype=np.int32)
    for i in range(trace.num_requests):
        out[i] = route(None, view, 0.0)
    return out


def partition(replica_of: np.ndarray, num_replicas: int, num_jobs: int) -> list[range]:
    """Contiguous ranges of replica ids, at most `num_jobs` and none empty, with about
    equal numbers of requests (every replica is in one range, idle ones included)."""
    counts = np.bincount(replica_of, minlength=num_replicas).astype(np.int64)
    jobs = max(1, min(num_jobs, num_replicas))
    cum = np.cumsum(counts)
    total = int(cum[-1]) if num_replicas else 0
    bounds = [0]
    for k in range(1, jobs):
        cut = int(np.searchsorted(cum, total * k / jobs, side="left")) + 1
        cut = min(max(cut, bounds[-1] + 1), num_replicas - (jobs - k))
        bounds.append(cut)
    bounds.append(num_replicas)
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


@dataclass(frozen=True)
class SplitPlan:
    """A run split by replica: each request's replica and each replica's group."""

    replica_of: np.ndarray  # replica id per trace row (the serial router's choice)
    groups: list[range]  # replica ids per worker

    @property
    def owner_of_replica(self) -> np.ndarray:
        num_replicas = self.groups[-1].stop
        owner = np.empty(num_replicas, dtype=np.int32)
        for w, group in enumerate(self.groups):
            owner[group.start : group.stop] = w
        return owner

    @property
    def owner_of_request(self) -> np.ndarray:
        """The worker that simulates each trace row."""
        return self.owner_of_replica[self.replica_of]


def plan_split(run: ResolvedRun, trace: Trace, replica_jobs: int) -> SplitPlan:
    """The assignment and the groups of an eligible run (`split_refusal` is None)."""
    num_replicas = sum(p.spec.replicas for p in run.pools)
    replica_of = assign_replicas(run, trace)
    return SplitPlan(replica_of, partition(replica_of, num_replicas, replica_jobs))
