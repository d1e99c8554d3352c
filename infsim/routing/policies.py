"""Routing policies. Ties always go to the lowest replica index (determinism)."""

from __future__ import annotations

from infsim.core.request import RequestState
from infsim.routing.base import ClusterView, routers


@routers.register("round_robin")
class RoundRobin:
    """Replica i, i+1, ... in turn, whatever their load."""

    def __init__(self) -> None:
        self._next = 0

    def route(self, request: RequestState, view: ClusterView, now: float) -> int:
        replica = self._next % view.num_replicas
        self._next = replica + 1
        return replica


@routers.register("least_outstanding_requests")
class LeastOutstandingRequests:
    """Fewest requests waiting or running (vLLM production-stack / Ray Serve default)."""

    def route(self, request: RequestState, view: ClusterView, now: float) -> int:
        # Relative to capacity: the same choice in a homogeneous fleet, by capacity in a
        # heterogeneous one (a replica with twice the max_num_seqs takes twice the load).
        return min(range(view.num_replicas), key=view.request_load)


@routers.register("least_outstanding_tokens")
class LeastOutstandingTokens:
    """Fewest prompt+output tokens of outstanding requests (work-aware balancing)."""

    def route(self, request: RequestState, view: ClusterView, now: float) -> int:
        return min(range(view.num_replicas), key=view.token_load)


@routers.register("least_kv_usage")
class LeastKVUsage:
    """Lowest fraction of KV blocks in use."""

    def route(self, request: RequestState, view: ClusterView, now: float) -> int:
        return min(range(view.num_replicas), key=view.kv_usage)
