"""Test oracle: the straightforward per-block prefix-caching pool (vLLM V1 `BlockPool`).

This is `infsim.kvcache.prefix_cache.PrefixCachingKV` as it was before it was vectorised
(one Python iteration per 16-token block: an `OrderedDict` free queue, list ref counts).
The property tests drive it and the fast pool with the same operations and require
identical block ids, evictions, cached keys and free counts.
"""

from __future__ import annotations

from collections import OrderedDict

from infsim.core.request import RequestState
from infsim.kvcache.base import NO_MATCH, PrefixMatch, cdiv


class ReferencePrefixCachingKV:
    """The per-block pool: one Python step per block for every operation."""

    def __init__(self, num_total_blocks: int, block_size: int) -> None:
        self.num_total_blocks = num_total_blocks
        self.block_size = block_size
        self.ref_cnt = [0] * num_total_blocks
        self.block_key: list[int | None] = [None] * num_total_blocks
        self.cached: dict[int, int] = {}
        # OrderedDict, not deque: O(1) removal from the middle when a hit touches a block.
        self.free_queue: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_total_blocks))
        self.num_evictions = 0

    @property
    def num_free_blocks(self) -> int:
        return len(self.free_queue)

    @property
    def num_used_blocks(self) -> int:
        return self.num_total_blocks - len(self.free_queue)

    @property
    def num_cached_blocks(self) -> int:
        return len(self.cached)

    def num_free_blocks_for_run(self, running: list[RequestState], num_steps: int) -> int:
        """All free blocks, unless the outcome of a run would depend on its order of work.

        A run allocates and registers cached blocks request by request; stepping
        interleaves requests step by step. The two differ only through keys registered
        during the run (block keys past a request's cached blocks: keys that cover output
        tokens or a prompt's last partial block):
        - two running requests registering the same key: which one caches it depends on
          the order → no run (0);
        - a key to register held by a free cached block: whether that block is evicted
          before or after the registration depends on the order → the run may only take
          the free blocks queued before the first such block.
        """
        span = -(-num_steps // self.block_size) + 1  # blocks a request may fill in the run
        pending: list[int] = []
        for r in running:
            keys, start = r.block_keys, r.num_cached_blocks
            if keys and len(keys) > start:
                pending.extend(keys[start : start + span])
        if not pending:
            return len(self.free_queue)
        if len(set(pending)) < len(pending):
            return 0
        cached, ref_cnt = self.cached, self.ref_cnt
        evictable = {cached[key] for key in pending if key in cached and not ref_cnt[cached[key]]}
        if not evictable:
            return len(self.free_queue)
        max_need = len(running) * (span - 1)  # what the run could take at most
        before = 0
        for block in self.free_queue:
            if before >= max_need or block in evictable:
                break
            before += 1
        return before

    def num_blocks_held(self, req: RequestState) -> int:
        return req.num_blocks

    def num_cached_prefix_blocks(self, block_keys: list[int]) -> int:
        """How many leading `block_keys` are cached now (read-only; for routers)."""
        cached = self.cached
        n = 0
        for key in block_keys:
            if key not in cached:
                break
            n += 1
        return n

    def match_prefix(self, req: RequestState) -> PrefixMatch:
        """Longest run of leading blocks whose keys are cached (at most num_tokens - 1)."""
        keys = req.block_keys
        if not keys:
            return NO_MATCH
        max_blocks = min(len(keys), (req.num_tokens - 1) // self.block_size)
        cached = self.cached
        hits: list[int] = []
        for i in range(max_blocks):
            block = cached.get(keys[i])
            if block is None:
                break
            hits.append(block)
        return PrefixMatch(hits) if hits else NO_MATCH

    def allocate(
        self,
        req: RequestState,
        num_new_tokens: int,
        match: PrefixMatch = NO_MATCH,
        num_lookahead_tokens: int = 0,
    ) -> bool:
        """Give `req` blocks for its computed tokens, `match`'s hit tokens and new tokens.

        `match` is only passed on admission, when the request holds no blocks; the
        caller then sets num_computed_tokens to the hit length. Returns False, changing
        nothing, when free blocks (minus the hit blocks that would leave the free queue)
        are too few. Lookahead slots (speculative drafts, which may be rejected) get
        blocks but are not cached, as vLLM caches up to `request.num_tokens` only.
        """
        hits = match.block_ids
        num_computed = req.num_computed_tokens + len(hits) * self.block_size
        end = num_computed + num_new_tokens + num_lookahead_tokens
        if not isinstance(req.block_table, list):  # the oracle keeps its blocks in a list
            req.block_table = []
        need = cdiv(end, self.block_size) - len(req.block_table)
        need -= len(hits)
        evictable_hits = sum(1 for b in hits if self.ref_cnt[b] == 0)
        if need > len(self.free_queue) - evictable_hits:
            return False
        ref_cnt = self.ref_cnt
        for b in hits:
            if ref_cnt[b] == 0:
                del self.free_queue[b]
            ref_cnt[b] += 1
        req.block_table.extend(hits)
        if need > 0:
            req.block_table.extend(self._pop_free(need))
        req.num_blocks = len(req.block_table)
        if not req.num_cached_blocks:
            req.num_cached_blocks = len(hits)
        self._cache_full_blocks(req, num_computed + num_new_tokens)
        return True

    def free(self, req: RequestState) -> None:
        ref_cnt, free_queue = self.ref_cnt, self.free_queue
        for b in reversed(req.block_ids):
            ref_cnt[b] -= 1
            if not ref_cnt[b]:
                free_queue[b] = None
        req.block_table = []
        req.num_blocks = 0
        req.num_cached_blocks = 0

    def _pop_free(self, num: int) -> list[int]:
        """Take `num` blocks from the head of the free queue, evicting their keys."""
        popitem, block_key, cached, ref_cnt = (
            self.free_queue.popitem,
            self.block_key,
            self.cached,
            self.ref_cnt,
        )
        blocks = []
        for _ in range(num):
            block = popitem(last=False)[0]
            key = block_key[block]
            if key is not None:
                if cached.get(key) == block:
                    del cached[key]
                block_key[block] = None
                self.num_evictions += 1
            ref_cnt[block] = 1
            blocks.append(block)
        return blocks

    def _cache_full_blocks(self, req: RequestState, num_tokens_after: int) -> None:
        keys = req.block_keys
        if not keys:
            return
        num_full = min(num_tokens_after // self.block_size, len(keys))
        start = req.num_cached_blocks
        if num_full <= start:
            return
        cached, block_key, block_ids = self.cached, self.block_key, req.block_ids
        for i in range(start, num_full):
            key = keys[i]
            if key not in cached:
                block = block_ids[i]
                cached[key] = block
                block_key[block] = key
        req.num_cached_blocks = num_full
