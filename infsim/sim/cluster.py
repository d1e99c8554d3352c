"""Read-only view of the replicas for routers (`routing.base.ClusterView`)."""

from __future__ import annotations

from collections.abc import Sequence

from infsim.sim.replica import Replica


class ReplicaSetView:
    """Load of each replica as of the last event it processed."""

    def __init__(self, replicas: list[Replica]) -> None:
        self._replicas = replicas

    @property
    def num_replicas(self) -> int:
        return len(self._replicas)

    def outstanding_requests(self, replica: int) -> int:
        return self._replicas[replica].num_outstanding

    def outstanding_tokens(self, replica: int) -> int:
        return self._replicas[replica].num_outstanding_tokens

    def request_load(self, replica: int) -> float:
        r = self._replicas[replica]
        return r.num_outstanding / r.scheduler.config.max_num_seqs

    def token_load(self, replica: int) -> float:
        r = self._replicas[replica]
        kv = r.scheduler.kv
        return r.num_outstanding_tokens / (kv.num_total_blocks * kv.block_size)

    def kv_usage(self, replica: int) -> float:
        kv = self._replicas[replica].scheduler.kv
        return 1.0 - kv.num_free_blocks / kv.num_total_blocks

    def cached_prefix_blocks(self, replica: int, block_keys: Sequence[int]) -> int:
        return self._replicas[replica].scheduler.kv.num_cached_prefix_blocks(block_keys)
