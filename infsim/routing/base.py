"""Router protocol and the read-only cluster view routers decide from.

A router is a pure object: `route(request, view, now) -> replica index`. It never
mutates replicas; the wiring layer submits the request to the chosen replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from infsim.core.request import RequestState
from infsim.registry import Registry


class ClusterView(Protocol):
    """Read-only load of each replica at routing time (index 0..num_replicas-1)."""

    @property
    def num_replicas(self) -> int: ...

    def outstanding_requests(self, replica: int) -> int: ...

    def outstanding_tokens(self, replica: int) -> int: ...

    def kv_usage(self, replica: int) -> float: ...

    def request_load(self, replica: int) -> float:
        """Outstanding requests / max_num_seqs: load relative to capacity, so that
        least-load routing weighs replicas of different GPUs by what they hold."""
        ...

    def token_load(self, replica: int) -> float:
        """Outstanding tokens / KV capacity in tokens (blocks × block size)."""
        ...

    def cached_prefix_blocks(self, replica: int, block_keys: Sequence[int]) -> int:
        """Leading blocks of `block_keys` the replica's prefix cache holds now."""
        ...


class Router(Protocol):
    def route(self, request: RequestState, view: ClusterView, now: float) -> int: ...


routers: Registry[type] = Registry("router")
