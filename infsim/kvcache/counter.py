"""KV accounting without prefix caching: a block counter.

Without prefix caching no block is ever shared or looked up by content, so which block
ids a request holds cannot change any outcome; only counts matter. Keeping counts makes
allocation O(1) instead of O(blocks) and is the reason long traces simulate in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from infsim.core.request import RequestState
from infsim.kvcache.base import NO_MATCH, PrefixMatch, cdiv


class BlockCounter:
    """Paged KV memory tracked by count. Invariant: free + Σ held == total."""

    def __init__(self, num_total_blocks: int, block_size: int) -> None:
        self.num_total_blocks = num_total_blocks
        self.block_size = block_size
        self._num_free = num_total_blocks

    @property
    def num_free_blocks(self) -> int:
        return self._num_free

    @property
    def num_used_blocks(self) -> int:
        return self.num_total_blocks - self._num_free

    @property
    def num_cached_blocks(self) -> int:
        return 0

    def num_free_blocks_for_run(self, running: list[RequestState], num_steps: int) -> int:
        return self.num_free_blocks

    def num_blocks_held(self, req: RequestState) -> int:
        return req.num_blocks

    def num_cached_prefix_blocks(self, block_keys: Sequence[int]) -> int:
        return 0

    def match_prefix(self, req: RequestState) -> PrefixMatch:
        return NO_MATCH

    def allocate(
        self,
        req: RequestState,
        num_new_tokens: int,
        match: PrefixMatch = NO_MATCH,
        num_lookahead_tokens: int = 0,
    ) -> bool:
        """Reserve blocks so the request can hold its computed, new and lookahead tokens."""
        total = req.num_computed_tokens + num_new_tokens + num_lookahead_tokens
        need = cdiv(total, self.block_size) - req.num_blocks
        if need <= 0:
            return True
        if need > self._num_free:
            return False
        self._num_free -= need
        req.num_blocks += need
        return True

    def free(self, req: RequestState) -> None:
        self._num_free += req.num_blocks
        req.num_blocks = 0
