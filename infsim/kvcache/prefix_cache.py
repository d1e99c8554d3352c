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
blocks at once, so every operation works on whole runs of blocks with numpy, never one
Python iteration per block: ref counts and keys are arrays indexed by block id, and
`cached` is paged: keys are grouped in pages of 32 consecutive values (key >> 5), a dict
maps a page to a row of a numpy array and the row holds the block of each of its 32 keys
(-1: not cached). A request's keys are consecutive within a trace hash block
(`BlockKeyer`: chain << 24 | position), so a run of hundreds of keys touches a few pages:
one dict call per page and one numpy gather or scatter for the run, where a dict of
Python ints costs a dict call and a cache miss per key (that made registration and
eviction the bulk of a long trace). A row returns to a free list when its last key is
evicted. The free queue is an array of block ids with a head and a tail index and, per
block, its position in the array (-1 when not queued)::

    queue:  [ .. popped .. | b7 b2 (b5) b9 ... b4 | .. room .. ]
                             head                  tail
    pos[b] = index of b in queue, or -1

Popping takes the next live entries after the head (a slice); freeing writes the blocks
at the tail; a touched block only gets pos -1, leaving a hole that pops step over (holes
are counted, so a queue without holes pops a plain slice). When the tail reaches the end
of the array, or holes outnumber live entries, the live entries move to the front. The
order of the live entries is exactly the LRU order of the per-block queue, so block ids,
evictions and registrations are those of the per-block pool (tests/kvcache keeps that
pool as the oracle of a property test). Keys must be non-negative integers below 2**63.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from infsim.core.request import RequestState
from infsim.kvcache.base import NO_MATCH, PrefixMatch

_NO_KEY = -1
_PAGE_BITS = 5  # keys per page of `cached`: 32, a Mooncake hash block of 16-token blocks
_OFFSET = (1 << _PAGE_BITS) - 1
_LOW_BITS = (1 << 24) - 1  # BlockKeyer puts the block position here (see hashing.py)


class PrefixCachingKV:
    """KV block pool with hash-chained prefix caching and LRU eviction."""

    min_compact_holes = 1024
    """Holes tolerated in the free queue before compacting, however short the queue."""

    def __init__(self, num_total_blocks: int, block_size: int) -> None:
        n = num_total_blocks
        self.num_total_blocks = n
        self.block_size = block_size
        self._ref = np.zeros(n, dtype=np.int32)
        self._key = np.full(n, _NO_KEY, dtype=np.int64)
        # cached, paged: page (key >> 5) -> row; _pages[row << 5 | key & 31] = block or -1. Row 0
        # is never a page's, so a page without a row reads -1 there.
        num_rows = 1 + max(8, n // 16)
        self._page_row: dict[int, int] = {}
        self._pages = np.full(num_rows << _PAGE_BITS, -1, dtype=np.int32)  # flat rows
        self._row_page = [0] * num_rows
        self._row_live = [0] * num_rows  # keys cached in the row
        self._free_rows = list(range(num_rows - 1, 0, -1))
        self._block_slot = np.zeros(n, dtype=np.intp)  # where a cached block is in _pages
        self._num_cached = 0
        # Room for every block twice: compacting leaves at most n live entries and a push
        # never adds more than n - live, so one compaction always makes room.
        self._queue = np.empty(2 * n + 64, dtype=np.intp)
        self._queue[:n] = np.arange(n)
        self._pos = np.arange(n, dtype=np.intp)
        self._head = 0
        self._tail = n
        self._num_free = n
        self._num_holes = 0  # entries in queue[head:tail] that are not live
        self.num_evictions = 0

    # -- read-only views (tests, reports) ---------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return self._num_free

    @property
    def num_used_blocks(self) -> int:
        return self.num_total_blocks - self._num_free

    @property
    def num_cached_blocks(self) -> int:
        return self._num_cached

    @property
    def cached(self) -> dict[int, int]:
        """Key -> block id of every cached block (a copy, in block id order)."""
        blocks = np.flatnonzero(self._key != _NO_KEY)
        return dict(zip(self._key[blocks].tolist(), blocks.tolist(), strict=True))

    @property
    def free_queue(self) -> list[int]:
        """Free block ids, head (evicted first) to tail."""
        window = self._queue[self._head : self._tail]
        live = self._pos[window] == np.arange(self._head, self._tail)
        return window[live].tolist()

    @property
    def ref_cnt(self) -> list[int]:
        return self._ref.tolist()

    @property
    def block_key(self) -> list[int | None]:
        return [None if k == _NO_KEY else k for k in self._key.tolist()]

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
        pending: list[int] = []
        for r in running:
            keys, start = r.block_keys, r.num_cached_blocks
            if keys and len(keys) > start:
                pending.extend(keys[start : start + span])
        if not pending:
            return self._num_free
        if len(set(pending)) < len(pending):
            return 0
        held = self._find(np.array(pending, dtype=np.int64))
        held = held[held >= 0]
        evictable = held[self._ref[held] == 0]
        if not len(evictable):
            return self._num_free
        max_need = len(running) * (span - 1)  # what the run could take at most
        first = int(self._pos[evictable].min())  # free blocks are all queued
        return min(max_need, self._num_live(self._head, first))

    def num_blocks_held(self, req: RequestState) -> int:
        return req.num_blocks

    def num_cached_prefix_blocks(self, block_keys: list[int]) -> int:
        """How many leading `block_keys` are cached now (read-only; for routers)."""
        return len(self._cached_prefix(block_keys, len(block_keys)))

    def match_prefix(self, req: RequestState) -> PrefixMatch:
        """Longest run of leading blocks whose keys are cached (at most num_tokens - 1)."""
        keys = req.block_keys
        if not keys:
            return NO_MATCH
        max_blocks = min(len(keys), (req.num_tokens - 1) // self.block_size)
        hits = self._cached_prefix(keys, max_blocks)
        return PrefixMatch(hits) if hits else NO_MATCH

    def _cached_prefix(self, keys: list[int], limit: int) -> list[int]:
        """Blocks of the leading cached keys among keys[:limit], looked up in growing
        chunks (a miss usually comes early; a long hit costs few calls)."""
        hits: list[int] = []
        i, chunk = 0, 16
        while i < limit:
            j = min(limit, i + chunk)
            found = self._find(np.array(keys[i:j], dtype=np.int64))
            miss = (found < 0).nonzero()[0]
            if len(miss):
                hits.extend(found[: miss[0]].tolist())
                break
            hits.extend(found.tolist())
            i, chunk = j, chunk * 4
        return hits

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
        nothing, when free blocks (minus the hit blocks that would leave the free queue)
        are too few. Lookahead slots (speculative drafts, which may be rejected) get
        blocks but are not cached, as vLLM caches up to `request.num_tokens` only.
        """
        hits = match.block_ids
        bs = self.block_size
        held = req.block_ids
        num_computed = req.num_computed_tokens + len(hits) * bs
        end = num_computed + num_new_tokens + num_lookahead_tokens
        need = -(-end // bs) - len(held) - len(hits)
        if hits:
            hit_arr = np.array(hits, dtype=np.intp)
            idle = hit_arr[self._ref[hit_arr] == 0]
            if need > self._num_free - len(idle):
                return False
            self._ref[hit_arr] += 1  # hit blocks are distinct (distinct keys)
            if len(idle):  # touch: they leave the free queue, leaving holes
                self._pos[idle] = -1
                self._num_free -= len(idle)
                self._num_holes += len(idle)
                if self._num_holes > max(self.min_compact_holes, self._num_free):
                    self._compact()
            held.extend(hits)
        elif need > self._num_free:
            return False
        if need > 0:
            held.extend(self._pop_free(need))
        req.num_blocks = len(held)
        if not req.num_cached_blocks:
            req.num_cached_blocks = len(hits)
        if req.block_keys:
            self._cache_full_blocks(req, num_computed + num_new_tokens)
        return True

    def free(self, req: RequestState) -> None:
        held = req.block_ids
        if len(held) == 1:
            b = held[0]
            self._ref[b] -= 1
            if not self._ref[b]:
                self._push(np.array(held, dtype=np.intp))
        elif held:
            blocks = np.fromiter(reversed(held), dtype=np.intp, count=len(held))
            ref = self._ref
            ref[blocks] -= 1  # a request holds a block once
            self._push(blocks[ref[blocks] == 0])
        req.block_ids = []
        req.num_blocks = 0
        req.num_cached_blocks = 0

    def _pop_free(self, num: int) -> list[int]:
        """Take `num` blocks from the head of the free queue, evicting their keys."""
        queue, pos, head = self._queue, self._pos, self._head
        if not self._num_holes:
            blocks = queue[head : head + num]
            self._head = head + num
        else:
            tail = self._tail
            width = num + min(self._num_holes, num // 4 + 16)
            while True:  # the window doubles until it holds num live entries
                stop = min(tail, head + width)
                window = queue[head:stop]
                live = (pos[window] == np.arange(head, stop)).nonzero()[0]
                if len(live) >= num:
                    break
                width *= 2
            live = live[:num]
            blocks = window[live]
            taken = int(live[-1]) + 1
            self._head = head + taken
            self._num_holes -= taken - num
        pos[blocks] = -1
        self._num_free -= num
        self._ref[blocks] = 1
        taken_ids = blocks.tolist()
        keys = self._key[blocks]
        keyed = (keys != _NO_KEY).nonzero()[0]
        if len(keyed):
            self._uncache(blocks[keyed] if len(keyed) < num else blocks)
        return taken_ids

    def _push(self, blocks: np.ndarray) -> None:
        """Append `blocks` (ref count 0, in order) at the tail of the free queue."""
        m = len(blocks)
        if not m:
            return
        if self._tail + m > len(self._queue):
            self._compact()
        tail = self._tail
        self._queue[tail : tail + m] = blocks
        self._pos[blocks] = np.arange(tail, tail + m)
        self._tail = tail + m
        self._num_free += m

    def _compact(self) -> None:
        """Move the live queue entries to the front of the array (order kept)."""
        head, tail = self._head, self._tail
        window = self._queue[head:tail]
        live = window[self._pos[window] == np.arange(head, tail)]
        n = len(live)
        self._queue[:n] = live
        self._pos[live] = np.arange(n)
        self._head, self._tail, self._num_holes = 0, n, 0

    def _num_live(self, start: int, stop: int) -> int:
        """Live queue entries at positions start..stop-1."""
        if not self._num_holes:
            return stop - start
        window = self._queue[start:stop]
        return int(np.count_nonzero(self._pos[window] == np.arange(start, stop)))

    def _cache_full_blocks(self, req: RequestState, num_tokens_after: int) -> None:
        """Register the request's newly full blocks whose keys are not cached yet (a key
        already cached by another block keeps that block, as in vLLM)."""
        keys = req.block_keys
        num_full = min(num_tokens_after // self.block_size, len(keys))
        start = req.num_cached_blocks
        if num_full <= start:
            return
        req.num_cached_blocks = num_full
        if num_full - start == 1:
            key = keys[start]
            if self._find_one(key) < 0:
                self._insert_one(key, req.block_ids[start])
            return
        key_arr = np.array(keys[start:num_full], dtype=np.int64)
        positions = key_arr & _LOW_BITS
        if np.count_nonzero(positions[1:] <= positions[:-1]):  # keys may repeat: one by one
            blocks = req.block_ids[start:num_full]
            for key, block in zip(keys[start:num_full], blocks, strict=True):
                if self._find_one(key) < 0:
                    self._insert_one(key, block)
            return
        block_arr = np.array(req.block_ids[start:num_full], dtype=np.intp)
        pages, offsets = key_arr >> _PAGE_BITS, key_arr & _OFFSET
        rows, run_rows, run_pages, lengths = self._rows(pages)
        if any(run_rows):  # some pages are in use: are some keys cached already?
            found = self._pages[(rows << _PAGE_BITS) | offsets]
            if np.count_nonzero(found >= 0):  # yes: register the others only
                new = (found < 0).nonzero()[0]
                if len(new):
                    self._insert(key_arr[new], block_arr[new])
                return
        if 0 in run_rows:  # pages without a row yet
            run_rows = [r or self._row_of(p) for r, p in zip(run_rows, run_pages, strict=True)]
            rows = run_rows[0] if len(run_rows) == 1 else np.repeat(run_rows, lengths)
        self._add(rows, offsets, block_arr, key_arr, run_rows, lengths)

    # -- the paged key -> block map ---------------------------------------------------
    def _rows(self, pages: np.ndarray) -> tuple[np.ndarray | int, list, list, list]:
        """Row of each page (0 where it has none), and per run of equal pages: its row,
        page and length. One run: the row is returned as an int; no page with a row: 0."""
        changes = (pages[1:] != pages[:-1]).nonzero()[0]
        get = self._page_row.get
        if not len(changes):
            page = int(pages[0])
            row = get(page, 0)
            return row, [row], [page], [len(pages)]
        bounds = [0, *(changes + 1).tolist(), len(pages)]
        run_pages = pages[bounds[:-1]].tolist()
        run_rows = [get(p, 0) for p in run_pages]
        lengths = [b - a for a, b in pairwise(bounds)]
        rows = np.repeat(run_rows, lengths) if any(run_rows) else 0
        return rows, run_rows, run_pages, lengths

    def _row_of(self, page: int) -> int:
        """The page's row, given one from the free list if it has none."""
        row = self._page_row.get(page)
        if row is None:
            if not self._free_rows:
                self._grow_rows()
            row = self._free_rows.pop()
            self._page_row[page] = row
            self._row_page[row] = page
        return row

    def _grow_rows(self) -> None:
        old = len(self._pages) >> _PAGE_BITS
        self._pages = np.concatenate((self._pages, np.full_like(self._pages, -1)))
        self._row_page.extend([0] * old)
        self._row_live.extend([0] * old)
        self._free_rows.extend(range(2 * old - 1, old - 1, -1))

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Block of each key (int64 array), -1 where not cached."""
        rows = self._rows(keys >> _PAGE_BITS)[0]
        return self._pages[(rows << _PAGE_BITS) | (keys & _OFFSET)]

    def _insert(self, keys: np.ndarray, blocks: np.ndarray) -> None:
        """Cache distinct keys that are not cached, on their (unkeyed) blocks."""
        _, run_rows, run_pages, lengths = self._rows(keys >> _PAGE_BITS)
        run_rows = [r or self._row_of(p) for r, p in zip(run_rows, run_pages, strict=True)]
        rows = run_rows[0] if len(run_rows) == 1 else np.repeat(run_rows, lengths)
        self._add(rows, keys & _OFFSET, blocks, keys, run_rows, lengths)

    def _add(
        self,
        rows: np.ndarray | int,
        offsets: np.ndarray,
        blocks: np.ndarray,
        keys: np.ndarray,
        run_rows: list[int],
        lengths: list[int],
    ) -> None:
        slots = (rows << _PAGE_BITS) | offsets
        self._pages[slots] = blocks
        live = self._row_live
        for row, length in zip(run_rows, lengths, strict=True):
            live[row] += length
        self._block_slot[blocks] = slots
        self._key[blocks] = keys
        self._num_cached += len(keys)

    def _uncache(self, blocks: np.ndarray) -> None:
        """Evict the keys of `blocks` (all cached); a row left empty is freed."""
        slots = self._block_slot[blocks]
        self._pages[slots] = -1
        rows = slots >> _PAGE_BITS
        changes = (rows[1:] != rows[:-1]).nonzero()[0]
        if len(changes):
            bounds = [0, *(changes + 1).tolist(), len(rows)]
            run_rows = rows[bounds[:-1]].tolist()
            lengths = [b - a for a, b in pairwise(bounds)]
        else:
            run_rows, lengths = [int(rows[0])], [len(rows)]
        live = self._row_live
        for row, length in zip(run_rows, lengths, strict=True):
            live[row] -= length
            if not live[row]:
                del self._page_row[self._row_page[row]]
                self._free_rows.append(row)
        self._key[blocks] = _NO_KEY
        self._num_cached -= len(blocks)
        self.num_evictions += len(blocks)

    def _find_one(self, key: int) -> int:
        row = self._page_row.get(key >> _PAGE_BITS, 0)
        return int(self._pages[row << _PAGE_BITS | key & _OFFSET])

    def _insert_one(self, key: int, block: int) -> None:
        row = self._row_of(key >> _PAGE_BITS)
        slot = row << _PAGE_BITS | key & _OFFSET
        self._pages[slot] = block
        self._row_live[row] += 1
        self._block_slot[block] = slot
        self._key[block] = key
        self._num_cached += 1
