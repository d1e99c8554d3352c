"""KV-cache manager protocol: what the scheduler asks of paged KV memory.

A replica's KV memory is `num_total_blocks` blocks of `block_size` tokens. A request
holding `b` blocks can hold `b * block_size` tokens of KV. Invariant, checked by the
property tests for every implementation::

    num_free_blocks + num_used_blocks == num_total_blocks

where free blocks include cached blocks that no request references (evictable).
Two implementations: `BlockCounter` (prefix caching off: only counts matter, so no
block ids are kept, which is what makes long traces cheap) and `PrefixCachingKV`
(block ids, chained block keys and LRU eviction, as vLLM V1's `BlockPool`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from infsim.core.request import RequestState


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """Result of a prefix-cache lookup: leading cached blocks and the tokens they hold."""

    blocks: np.ndarray | Sequence[int] = ()
    """The hit blocks' ids: an int array from the prefix pool (its hundreds of ids are
    never turned into Python ints on the run path), a list from other managers."""

    @property
    def block_ids(self) -> list[int]:
        blocks = self.blocks
        return blocks.tolist() if isinstance(blocks, np.ndarray) else list(blocks)

    def num_tokens(self, block_size: int) -> int:
        return len(self.blocks) * block_size


NO_MATCH = PrefixMatch()


class KVCacheManager(Protocol):
    block_size: int
    num_total_blocks: int

    @property
    def num_free_blocks(self) -> int: ...

    def num_blocks_held(self, req: RequestState) -> int: ...

    def match_prefix(self, req: RequestState) -> PrefixMatch: ...

    def allocate(
        self,
        req: RequestState,
        num_new_tokens: int,
        match: PrefixMatch = NO_MATCH,
        num_lookahead_tokens: int = 0,
    ) -> bool:
        """Blocks for computed + new (+ lookahead) tokens. Lookahead slots (speculative
        drafts, as vLLM's `allocate_slots`) are reserved but never prefix-cached."""
        ...

    def free(self, req: RequestState) -> None: ...

    def num_free_blocks_for_run(self, running: list[RequestState], num_steps: int) -> int:
        """Free blocks a fast-forwarded run of up to `num_steps` decode steps may take
        without its result depending on the order of work within the run (a run allocates
        and caches request by request, stepping interleaves requests)."""
        ...

    def num_cached_prefix_blocks(self, block_keys: Sequence[int]) -> int:
        """How many leading `block_keys` are cached now (read-only; for routers)."""
        ...


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def max_decode_steps(kv: KVCacheManager, running: list[RequestState], limit: int) -> int:
    """Largest k ≤ limit such that k decode steps of every running request fit in free blocks.

    Request i with c_i computed tokens and b_i blocks needs blocks for c_i + j tokens
    in step j, i.e. max(0, ceil((j - o_i) / block_size)) new blocks, o_i = b_i*bs - c_i
    free slots. The need is non-decreasing in j, so the answer is found by bisection on
    the total need; the common case (plenty of free blocks) is settled by an upper bound.
    """
    bs = kv.block_size
    free = kv.num_free_blocks_for_run(running, limit)
    if len(running) * cdiv(limit, bs) <= free:
        return limit
    slack = np.fromiter(
        (kv.num_blocks_held(r) * bs - r.num_computed_tokens for r in running),
        dtype=np.int64,
        count=len(running),
    )

    def need(j: int) -> int:
        return int(np.maximum(0, -((slack - j) // bs)).sum())

    lo, hi = 0, limit  # need(lo) fits; find the largest fitting
    if need(hi) <= free:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if need(mid) <= free:
            lo = mid
        else:
            hi = mid
    return lo
