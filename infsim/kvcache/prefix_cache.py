"""Paged KV blocks with automatic prefix caching (vLLM V1 `BlockPool` semantics).

    block ids 0..N-1, each with ref_cnt and an optional content key
    cached:     key -> block id          (full blocks whose content is known)
    free queue: block ids with ref_cnt 0, least recently freed first

             head (evicted first)                          tail (freed last)
    free queue: [b7 (key k3)] [b2] [b9 (key k8)] ... [b4 (key k1)]

Allocation pops from the head; a popped block that still holds a key is evicted (its
key leaves `cached`). A prefix hit on a free cached block removes it from the queue
("touch") and bumps its ref count. A request frees its blocks in reverse order, so its
tail blocks (least likely to be shared) are evicted before its head blocks. Full blocks
are registered in `cached` when scheduled tokens fill them and the request knows their
key (from trace hash ids or session-derived ids); generated tokens without a known key
are never cached. A prefix hit is capped at num_tokens - 1 so at least one token is
computed, as in vLLM.

Invariant: len(free queue) + #{blocks with ref_cnt > 0} == num_total_blocks.

How it is kept fast. A long prompt allocates, registers and later frees hundreds of
blocks at once (a Mooncake prompt: ~750 blocks of 16 tokens). Every operation is one call
of a compiled per-block loop (`infsim.kvcache.pool_kernels`, numba): the free queue is a
ring array with lazy deletion (O(1) amortised touch, pop and push; a pop reads forwards),
the cached map an open-addressing hash table in arrays. The per-block semantics are
written once, in the kernels, and are exactly those of the plain per-block pool the
property tests keep as their oracle (tests/kvcache/reference_pool.py): same block ids,
evictions and cached keys.
A request's block ids are the first `num_blocks` entries of its `block_table` array, and a
trace's keys come as an int64 array (`BlockKeys.array`), so nothing is converted per block.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from infsim.core.request import NO_BLOCKS, RequestState
from infsim.kvcache.base import NO_MATCH, PrefixMatch
from infsim.kvcache.hashing import BlockKeys
from infsim.kvcache.pool_layout import (
    EMPTY,
    NUM_CACHED,
    NUM_EVICTIONS,
    NUM_FREE,
    NUM_FREE_ROWS,
    NUM_META,
    OFFSET,
    PAGE_BITS,
    QUEUE_TAIL,
)

logger = logging.getLogger("infsim.kvcache")
_NO_KEYS = np.empty(0, dtype=np.int64)

PROMOTE_AFTER_BLOCK_OPS = 200_000
"""Block operations (blocks taken, registered, looked up or freed) a process runs on the
plain-Python kernels before it switches to numba's. Loading numba costs ~0.55 s once per
process (its import, its runtime, the cached machine code); the plain kernels cost
~0.8-1 µs a block operation (measured: a 192-block prefill chunk that pops, evicts and
registers, 471 µs). So a small run (a short trace, a test) never pays for numba, one that
turns out long pays ~0.2 s extra, and `prepare_kernels` starts a run known to be long on
numba's. Both run the same functions on the same arrays: results are
identical whichever runs when."""

_active: ModuleType | None = None  # the kernels every pool of this process calls now
_settled = False  # whether those are the ones it keeps (numba's, or plain without numba)
_block_ops = 0  # block operations run on the plain kernels so far


def _kernels(num_block_ops: int = 0) -> ModuleType:
    """The kernels to call for an operation on `num_block_ops` blocks: the plain-Python
    ones until the process has run PROMOTE_AFTER_BLOCK_OPS on them, then the compiled
    ones (counted only until then)."""
    global _active, _block_ops
    if not _settled:
        _block_ops += num_block_ops
        if _block_ops >= PROMOTE_AFTER_BLOCK_OPS:
            _promote()
    if _active is None:
        _active = _load_plain()
    return _active


def _load_plain() -> ModuleType:
    """pool_kernels' source loaded as a second, plain-Python module (it skips numba when
    its name says plain), so the first pools of a process do not import numba."""
    source = Path(__file__).with_name("pool_kernels.py")
    spec = importlib.util.spec_from_file_location("infsim.kvcache.pool_kernels_plain", source)
    if spec is None or spec.loader is None:  # (a file location always has a loader)
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _promote() -> None:
    """Switch every pool of the process to compiled kernels (once): the ahead-of-time
    ones when the compiled build made them (hatch_build.py: no numba import, nothing
    to load), else numba's; without numba the plain ones stay, with a warning."""
    global _active, _settled
    _settled = True
    compiled = compiled_kernels()
    if compiled is None:
        logger.warning(
            "numba is not available (or NUMBA_DISABLE_JIT is set): the prefix-caching "
            "KV pool runs its per-block loops in plain Python, with the same results "
            "but much slower on long traces (install numba)"
        )
        return
    _active = compiled


def compiled_kernels() -> ModuleType | None:
    """The compiled kernels: `_pool_kernels_aot` (numba's ahead-of-time build of
    pool_kernels, made by the compiled build) when present, else pool_kernels under
    numba's JIT; None when numba is missing or disabled (NUMBA_DISABLE_JIT, which
    this reads as numba does, so the ahead-of-time build does not bypass it)."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0"):
        try:
            return importlib.import_module("infsim.kvcache._pool_kernels_aot")
        except ImportError:
            pass
    from infsim.kvcache import pool_kernels

    return pool_kernels if pool_kernels.JIT else None


def keying_kernels() -> ModuleType | None:
    """The compiled kernels when the process has switched to them (for the keyer of a
    run that `prepare_kernels` started on them), else None: the keyer's dict is then
    the faster way (`hashing.BlockKeyer`)."""
    active = _active
    if _settled and active is not None and not active.__name__.endswith("_plain"):
        return active
    return None


def prepare_kernels(expected_block_ops: int) -> None:
    """Start on numba's kernels when a run is expected to reach the promotion point
    anyway (the engine's estimate from the trace's tokens), instead of after it."""
    if not _settled and _block_ops + expected_block_ops >= PROMOTE_AFTER_BLOCK_OPS:
        _promote()


def _key_array(keys: Sequence[int]) -> np.ndarray:
    """A request's keys as int64 (a `BlockKeys` holds them so; a list is converted)."""
    if type(keys) is BlockKeys:
        return keys.array
    return np.array(keys, dtype=np.int64) if len(keys) else _NO_KEYS


class PrefixCachingKV:
    """KV block pool with hash-chained prefix caching and LRU eviction."""

    def __init__(self, num_total_blocks: int, block_size: int) -> None:
        n = num_total_blocks
        self.num_total_blocks = n
        self.block_size = block_size
        self._ref = np.zeros(n, dtype=np.int32)
        self._slot_of = np.full(n, -1, dtype=np.int64)
        # The free queue, all blocks in id order: ring[0:n], each block's entry at pos[b].
        self._ring = np.empty(4 * n + 4, dtype=np.int64)
        self._ring[:n] = np.arange(n)
        self._pos = np.arange(n, dtype=np.int64)
        self._meta = np.zeros(NUM_META, dtype=np.int64)
        self._meta[NUM_FREE] = n
        self._meta[QUEUE_TAIL] = n
        self._rows = np.empty(0, dtype=np.int32)
        self._rowmeta = np.empty(0, dtype=np.int64)
        self._grow_rows(max(8, n // 16))
        self._mark = np.zeros(n, dtype=np.int8)  # free_for_run's scratch
        self._out = np.empty(64, dtype=np.intp)  # match's scratch (grown on demand)

    def _grow_rows(self, num_new: int) -> None:
        """Add `num_new` free rows to the key map (and re-make its page table, sized to
        twice the rows): at the start, and when a registration could run out."""
        old = len(self._rowmeta) // 3
        total = old + num_new
        self._rows = np.concatenate((self._rows, np.full(num_new << PAGE_BITS, -1, np.int32)))
        rowmeta = np.zeros(3 * total, dtype=np.int64)
        rowmeta[: 3 * old] = self._rowmeta
        rowmeta[3 * old :: 3] = -1  # new rows: no page
        num_free = int(self._meta[NUM_FREE_ROWS])
        # the free stack: the old free rows, then the new ones (lowest on top)
        stack = [*self._rowmeta[2 : 3 * num_free : 3].tolist(), *range(total - 1, old - 1, -1)]
        rowmeta[2 : 3 * len(stack) : 3] = stack
        self._rowmeta = rowmeta
        self._meta[NUM_FREE_ROWS] = len(stack)
        capacity = 16
        while capacity < 2 * total:
            capacity *= 2
        self._pages = np.full(2 * capacity, EMPTY, dtype=np.int64)
        _kernels().rehash(rowmeta, self._pages)

    # -- read-only views (tests, reports) ---------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return int(self._meta[NUM_FREE])

    @property
    def num_used_blocks(self) -> int:
        return self.num_total_blocks - int(self._meta[NUM_FREE])

    @property
    def num_cached_blocks(self) -> int:
        return int(self._meta[NUM_CACHED])

    @property
    def num_evictions(self) -> int:
        return int(self._meta[NUM_EVICTIONS])

    def _keys_of(self, blocks: np.ndarray) -> np.ndarray:
        """Key of each cached block in `blocks`."""
        slots = self._slot_of[blocks]
        return (self._rowmeta[3 * (slots >> PAGE_BITS)] << PAGE_BITS) | (slots & OFFSET)

    @property
    def cached(self) -> dict[int, int]:
        """Key -> block id of every cached block (a copy, in block id order)."""
        blocks = np.flatnonzero(self._slot_of >= 0)
        return dict(zip(self._keys_of(blocks).tolist(), blocks.tolist(), strict=True))

    @property
    def free_queue(self) -> list[int]:
        """Free block ids, head (evicted first) to tail."""
        out = np.empty(self.num_free_blocks, dtype=np.int64)
        _kernels().queue_order(self._ring, self._pos, self._meta, out)
        return out.tolist()

    @property
    def ref_cnt(self) -> list[int]:
        return self._ref.tolist()

    @property
    def block_key(self) -> list[int | None]:
        keys: list[int | None] = [None] * self.num_total_blocks
        blocks = np.flatnonzero(self._slot_of >= 0)
        for b, key in zip(blocks.tolist(), self._keys_of(blocks).tolist(), strict=True):
            keys[b] = key
        return keys

    # -- queries --------------------------------------------------------------------
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
        pending: list[np.ndarray] = []
        for r in running:
            keys = r.block_keys
            if keys is not None:
                start = r.num_cached_blocks
                if len(keys) > start:
                    pending.append(_key_array(keys)[start : start + span])
        if not pending:
            return int(self._meta[NUM_FREE])
        run_keys = pending[0] if len(pending) == 1 else np.concatenate(pending)
        max_need = len(running) * (span - 1)  # what the run could take at most
        kernels = _kernels(len(run_keys) + max_need)
        return int(kernels.free_for_run(self._ref, self._ring, self._pos, self._pages,
                                        self._rows, self._meta, self._mark, run_keys,
                                        max_need))  # fmt: skip

    def num_blocks_held(self, req: RequestState) -> int:
        return req.num_blocks

    def num_cached_prefix_blocks(self, block_keys: Sequence[int]) -> int:
        """How many leading `block_keys` are cached now (read-only; for routers)."""
        if not block_keys:
            return 0
        keys = _key_array(block_keys)
        out = self._scratch(len(keys))
        return int(_kernels(len(keys)).match(self._pages, self._rows, keys, len(keys), out))

    def match_prefix(self, req: RequestState) -> PrefixMatch:
        """Longest run of leading blocks whose keys are cached (at most num_tokens - 1)."""
        keys = req.block_keys
        if not keys:
            return NO_MATCH
        array = _key_array(keys)
        limit = min(len(array), (req.num_tokens - 1) // self.block_size)
        if limit <= 0:
            return NO_MATCH
        out = self._scratch(limit)
        num = _kernels(limit).match(self._pages, self._rows, array, limit, out)
        if not num:
            return NO_MATCH
        hits = out[:num].copy()
        return PrefixMatch(hits)

    def _scratch(self, size: int) -> np.ndarray:
        if len(self._out) < size:
            self._out = np.empty(max(size, 2 * len(self._out)), dtype=np.intp)
        return self._out

    # -- allocation -----------------------------------------------------------------
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
        no blocks, when free blocks (minus the hit blocks that would leave the free queue)
        are too few. Lookahead slots (speculative drafts, which may be rejected) get
        blocks but are not cached, as vLLM caches up to `request.num_tokens` only.
        """
        num_hits = len(match.blocks)
        bs = self.block_size
        num_held = req.num_blocks
        num_computed = req.num_computed_tokens + num_hits * bs
        end = num_computed + num_new_tokens + num_lookahead_tokens
        need = -(-end // bs) - num_held - num_hits
        total = num_held + num_hits + max(need, 0)
        table = req.block_table
        if len(table) < total:  # room for the request's whole life, or twice what it has
            life = -(-(req.num_prompt_tokens + req.num_output_tokens) // bs)
            grown = np.empty(max(total, life, 2 * len(table)), dtype=np.intp)
            grown[:num_held] = table[:num_held]
            req.block_table = table = grown
        hits: np.ndarray = NO_BLOCKS
        if num_hits:
            given = match.blocks
            hits = given if isinstance(given, np.ndarray) else np.array(given, dtype=np.intp)
        keys = req.block_keys
        start = req.num_cached_blocks or num_hits
        stop = start
        array = _NO_KEYS
        if keys:  # (an empty list registers nothing)
            array = _key_array(keys)
            stop = max(start, min((num_computed + num_new_tokens) // bs, len(array)))
            if stop - start > self._meta[NUM_FREE_ROWS]:  # a row per new page at most
                self._grow_rows(max(stop - start, len(self._rowmeta) // 3))
        kernels = _kernels(num_hits + max(need, 0) + stop - start)
        if not kernels.allocate(self._ref, self._slot_of, self._ring, self._pos, self._pages,
                                self._rows, self._rowmeta, self._meta, table, num_held, hits,
                                num_hits, need, array, start, stop):  # fmt: skip
            return False
        req.num_blocks = total
        req.num_cached_blocks = stop
        return True

    def free(self, req: RequestState) -> None:
        num = req.num_blocks
        if num:
            _kernels(num).free(self._ref, self._ring, self._pos, self._meta, req.block_table,
                               num)  # fmt: skip
        req.block_table = NO_BLOCKS
        req.num_blocks = 0
        req.num_cached_blocks = 0
