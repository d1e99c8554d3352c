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
at the tail; a touched block only gets pos -1, leaving a hole that pops step over (the
holes' positions are kept, so a pop that ends before the first hole takes a plain slice
however many holes lie further on). When the tail reaches the end
of the array, or holes outnumber live entries, the live entries move to the front. The
order of the live entries is exactly the LRU order of the per-block queue, so block ids,
evictions and registrations are those of the per-block pool (tests/kvcache keeps that
pool as the oracle of a property test). Keys must be non-negative integers below 2**63.

Eviction is lazy: a block's slot in the key map (`_slot[b]`, -1 when it holds no key) is
the truth, and a map entry is valid only if its block points back at it
(`_slot[_pages[s]] == s`). Evicting a run of blocks is then one scatter (`_slot[run] = -1`)
and leaves stale entries behind, which lookups ignore and registrations overwrite. A row
whose entries are all stale keeps its page until the free rows run out; then the rows
are swept (`_reclaim_rows`, amortised: one pass over the blocks' slots per exhausted free
list). Evictions are not counted per pop: every registered key stays cached until it is
evicted, so `num_evictions` is registrations minus cached keys, counted when asked.
A request's block ids are the first `num_blocks` entries of its `block_table` array, and
a trace's keys come as arrays (`BlockKeys.array`), so no operation converts between
Python lists and arrays per block.

Per call, not per block. With ~750 blocks a request, the cost left is numpy's per-call
overhead (~0.5–1 µs a call) and the Python around it, so: a request's `KeyLayout` (its
keys' page runs and offsets) is made once, from the keyer's chains when it has them, and
a range of keys costs a bisect, one dict get per page and a repeat for its map slots;
pages that are all new get their rows in one dict update, and when the keys fill whole
pages (the keyer's trace block = 32 engine blocks, or a multiple) and the next free rows
are consecutive, their slots are one slice of the map (no per-key slots at all);
registrations of a few keys and pops of a few blocks go key by key / block by block
(cheaper than the array calls below ~6 and ~4).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from infsim.core.request import NO_BLOCKS, RequestState
from infsim.kvcache.base import NO_MATCH, PrefixMatch
from infsim.kvcache.hashing import BlockKeys

_PAGE_BITS = 5  # keys per page of `cached`: 32, a Mooncake hash block of 16-token blocks
_OFFSET = (1 << _PAGE_BITS) - 1
_LOW_BITS = (1 << 24) - 1  # BlockKeyer puts the block position here (see hashing.py)
_CHAIN_SHIFT = 24 - _PAGE_BITS  # a keyer key's page: chain << _CHAIN_SHIFT | position >> 5
_NO_PAGE = -1  # _row_page of a row no page has
_NO_HOLE = 1 << 62  # _first_hole of a queue without holes


class KeyLayout:
    """A request's keys as the pool reads them, made once per key sequence (and kept on
    a `BlockKeys`): the keys (int64), each key's offset in its page, the runs of
    consecutive keys in the same page (`bounds`: each run's first index, then the number
    of keys; `pages`: each run's page; `lengths`: its number of keys), whether the keys
    are all distinct and whether the runs' pages are. A range of keys then needs one dict
    call per run it covers and a repeat for its map slots, instead of recomputing pages
    and runs on every call."""

    __slots__ = ("array", "bounds", "distinct", "distinct_pages", "lengths", "linear",
                 "offsets", "pages", "size")  # fmt: skip

    def __init__(self, array: np.ndarray) -> None:
        size = len(array)
        self.array = array
        self.size = size
        self.offsets = array & _OFFSET
        pages = array >> _PAGE_BITS
        if size > 1:
            change = (pages[1:] != pages[:-1]).nonzero()[0] + 1
            self.bounds = bounds = [0, *change.tolist(), size]
            self.pages = [int(pages[0]), *pages[change].tolist()]
            self.lengths = [b - a for a, b in pairwise(bounds)]
            positions = array & _LOW_BITS  # increasing positions: distinct (the keyer's)
            self.distinct = bool((positions[1:] > positions[:-1]).all()) or (
                len(np.unique(array)) == size
            )
        else:
            self.bounds = [0, size]
            self.pages = pages.tolist()
            self.lengths = [size]
            self.distinct = True
        self.distinct_pages = len(set(self.pages)) == len(self.pages)
        self.linear = False


def _chain_layout(keys: BlockKeys) -> KeyLayout | None:
    """The layout of the keyer's keys from its trace blocks' chains, when a trace block is
    a power of two up to 32 engine blocks or a multiple of 32 (pages then change every
    min(per_chain, 32) positions: key = chain << 24 | position), else None."""
    per, size = keys.per_chain, len(keys.array)
    step = min(per, 1 << _PAGE_BITS)
    if not per or (1 << _PAGE_BITS) % step or per % step or size >> 24:
        return None
    global _OFFSETS
    if len(_OFFSETS) < size:
        _OFFSETS = np.arange(max(size, 2 * len(_OFFSETS)), dtype=np.int64) & _OFFSET
    chains = keys.chains
    layout = KeyLayout.__new__(KeyLayout)
    layout.array, layout.size = keys.array, size
    layout.offsets = _OFFSETS[:size]
    starts = range(0, size, step)
    layout.bounds = [*starts, size]
    if per == 1 << _PAGE_BITS:  # a trace block per page (Mooncake: 512 / 16 tokens)
        pages = [c << _CHAIN_SHIFT | t for t, c in enumerate(chains[: len(starts)])]
    else:
        pages = [chains[b // per] << _CHAIN_SHIFT | b >> _PAGE_BITS for b in starts]
    layout.pages = pages
    layout.lengths = [step] * (len(starts) - 1) + [size - starts[-1]]
    layout.distinct = layout.distinct_pages = True  # positions increase; chains differ
    # Runs are whole pages from offset 0 (the first may start, the last end, inside one):
    # on consecutive rows, keys[a:b] fill consecutive slots.
    layout.linear = step == 1 << _PAGE_BITS
    return layout


_OFFSETS = np.empty(0, dtype=np.int64)  # position & 31, shared by the keyer's layouts


def _layout(keys: list[int]) -> KeyLayout:
    """The layout of a request's keys (kept on a `BlockKeys` until the request frees its
    blocks, so only admitted requests hold one; made each time for a list)."""
    if type(keys) is BlockKeys:
        layout = keys.layout
        if layout is None:
            layout = keys.layout = _chain_layout(keys) or KeyLayout(keys.array)
        return layout
    return KeyLayout(np.array(keys, dtype=np.int64))


class PrefixCachingKV:
    """KV block pool with hash-chained prefix caching and LRU eviction."""

    min_compact_holes = 1024
    """Holes tolerated in the free queue before compacting, however short the queue."""
    max_keys_one_by_one = 6
    """Registrations of up to this many keys go key by key (cheaper than array calls)."""
    max_blocks_one_by_one = 4
    """Pops of up to this many blocks go block by block (cheaper than array calls)."""

    def __init__(self, num_total_blocks: int, block_size: int) -> None:
        n = num_total_blocks
        self.num_total_blocks = n
        self.block_size = block_size
        self._ref = np.zeros(n, dtype=np.int32)
        # _slot[b]: where block b's key is in _pages, -1 when b holds no key; _slot[n] = -1
        # is read for the map's "no block" entries (-1).
        self._slot = np.full(n + 1, -1, dtype=np.intp)
        # cached, paged: page (key >> 5) -> row; _pages[row << 5 | key & 31] = block (valid
        # when that block's _slot points back). Row 0 is never a page's, so a page without
        # a row reads -1 there.
        num_rows = 1 + max(8, n // 16)
        self._page_row: dict[int, int] = {}
        self._pages = np.full(num_rows << _PAGE_BITS, -1, dtype=np.int32)  # flat rows
        self._row_page = [_NO_PAGE] * num_rows
        self._free_rows = list(range(num_rows - 1, 0, -1))
        self._num_registered = 0  # keys registered so far
        # Room for every block four times: compacting leaves at most n live entries and a
        # push never adds more than n - live, so one compaction always makes room (and
        # comes once per ~3n blocks freed).
        self._queue = np.empty(4 * n + 64, dtype=np.intp)
        self._index = np.arange(len(self._queue), dtype=np.intp)  # queue positions
        self._queue[:n] = self._index[:n]
        self._pos = np.arange(n, dtype=np.intp)
        self._head = 0
        self._tail = n
        self._num_free = n
        self._num_holes = 0  # entries in queue[head:tail] that are not live
        self._holes: list[int] = []  # their positions (unordered; sorted when passed)
        self._first_hole = _NO_HOLE  # the least of them

    # -- read-only views (tests, reports) ---------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        return self._num_free

    @property
    def num_used_blocks(self) -> int:
        return self.num_total_blocks - self._num_free

    @property
    def num_cached_blocks(self) -> int:
        return int(np.count_nonzero(self._slot[:-1] >= 0))

    @property
    def num_evictions(self) -> int:
        """Keys evicted so far: every registered key is cached until it is evicted (a
        block gets a key only while it holds none), so not counted per pop."""
        return self._num_registered - self.num_cached_blocks

    def _keys_of(self, blocks: np.ndarray) -> np.ndarray:
        """Key of each cached block in `blocks`."""
        slots = self._slot[blocks]
        pages = np.array(self._row_page, dtype=np.int64)[slots >> _PAGE_BITS]
        return (pages << _PAGE_BITS) | (slots & _OFFSET)

    @property
    def cached(self) -> dict[int, int]:
        """Key -> block id of every cached block (a copy, in block id order)."""
        blocks = np.flatnonzero(self._slot[:-1] >= 0)
        return dict(zip(self._keys_of(blocks).tolist(), blocks.tolist(), strict=True))

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
        keys: list[int | None] = [None] * self.num_total_blocks
        blocks = np.flatnonzero(self._slot[:-1] >= 0)
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
        pending: list[tuple[KeyLayout, int, int]] = []
        for r in running:
            keys = r.block_keys
            if keys is not None:
                layout, start = _layout(keys), r.num_cached_blocks
                if layout.size > start:
                    pending.append((layout, start, min(start + span, layout.size)))
        if not pending:
            return self._num_free
        if len(pending) == 1:
            layout, start, stop = pending[0]
            if stop - start > 1 and not layout.distinct:
                keys = layout.array[start:stop]
                if len(np.unique(keys)) < len(keys):
                    return 0
        else:  # a key twice among the requests' pending keys: sorted, equal neighbours
            keys = np.sort(np.concatenate([lay.array[a:b] for lay, a, b in pending]))
            if np.any(keys[1:] == keys[:-1]):
                return 0
        held = [self._held_range(*p) for p in pending]
        held = [h for h in held if h is not None]
        if not held:
            return self._num_free
        held = held[0] if len(held) == 1 else np.concatenate(held)
        evictable = held[self._ref[held] == 0]
        if not len(evictable):
            return self._num_free
        max_need = len(running) * (span - 1)  # what the run could take at most
        first = int(self._pos[evictable].min())  # free blocks are all queued
        return min(max_need, self._num_live(self._head, first))

    def num_blocks_held(self, req: RequestState) -> int:
        return req.num_blocks

    def num_cached_prefix_blocks(self, block_keys: Sequence[int]) -> int:
        """How many leading `block_keys` are cached now (read-only; for routers)."""
        if not block_keys:
            return 0
        layout = _layout(block_keys)
        return len(self._cached_prefix(layout, layout.size))

    def match_prefix(self, req: RequestState) -> PrefixMatch:
        """Longest run of leading blocks whose keys are cached (at most num_tokens - 1)."""
        keys = req.block_keys
        if not keys:
            return NO_MATCH
        layout = _layout(keys)
        max_blocks = min(layout.size, (req.num_tokens - 1) // self.block_size)
        hits = self._cached_prefix(layout, max_blocks)
        return PrefixMatch(hits.tolist(), hits) if len(hits) else NO_MATCH

    def _cached_prefix(self, layout: KeyLayout, limit: int) -> np.ndarray:
        """Blocks of the leading cached keys among the first `limit`, looked up in
        growing chunks (a miss usually comes early; a long hit costs few calls)."""
        hits: list[np.ndarray] = []
        i, chunk = 0, 48
        while i < limit:
            j = min(limit, i + chunk)
            found = self._find_range(layout, i, j)
            if found is None:  # no page of these keys has a row
                break
            miss = (found < 0).nonzero()[0]
            if len(miss):
                hits.append(found[: miss[0]])
                break
            hits.append(found)
            i, chunk = j, chunk * 4
        if not hits:
            return NO_BLOCKS
        return hits[0] if len(hits) == 1 else np.concatenate(hits)

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
        num_hits = len(match.block_ids)
        bs = self.block_size
        num_held = req.num_blocks
        num_computed = req.num_computed_tokens + num_hits * bs
        end = num_computed + num_new_tokens + num_lookahead_tokens
        need = -(-end // bs) - num_held - num_hits
        if num_hits:
            hits = match.blocks
            if hits is None:
                hits = np.array(match.block_ids, dtype=np.intp)
            idle = hits[self._ref[hits] == 0]
            if need > self._num_free - len(idle):
                return False
            self._ref[hits] += 1  # hit blocks are distinct (distinct keys)
            if len(idle):  # touch: they leave the free queue, leaving holes
                positions = self._pos[idle].tolist()
                self._holes += positions
                self._first_hole = min(self._first_hole, *positions)
                self._pos[idle] = -1
                self._num_free -= len(idle)
                self._num_holes += len(idle)
                if self._num_holes > max(self.min_compact_holes, self._num_free):
                    self._compact()
        elif need > self._num_free:
            return False
        total = num_held + num_hits + max(need, 0)
        table = req.block_table
        if len(table) < total:  # room for the request's whole life, or twice what it has
            life = -(-(req.num_prompt_tokens + req.num_output_tokens) // bs)
            grown = np.empty(max(total, life, 2 * len(table)), dtype=np.intp)
            grown[:num_held] = table[:num_held]
            req.block_table = table = grown
        if num_hits:
            table[num_held : num_held + num_hits] = hits
        if need > 0:
            table[num_held + num_hits : total] = self._pop_free(need)
        req.num_blocks = total
        if not req.num_cached_blocks:
            req.num_cached_blocks = num_hits
        if req.block_keys is not None:  # (an empty list registers nothing)
            self._cache_full_blocks(req, num_computed + num_new_tokens)
        return True

    def free(self, req: RequestState) -> None:
        num = req.num_blocks
        if num == 1:
            b = req.block_table[0]
            self._ref[b] -= 1
            if not self._ref[b]:
                self._push(req.block_table[:1])
        elif num:
            blocks = req.block_table[num - 1 :: -1]
            ref = self._ref
            ref[blocks] -= 1  # a request holds a block once
            self._push(blocks[ref[blocks] == 0])
        req.block_table = NO_BLOCKS
        req.num_blocks = 0
        req.num_cached_blocks = 0
        if type(req.block_keys) is BlockKeys:  # its layout is made again if it comes back
            req.block_keys.layout = None

    def _pop_free(self, num: int) -> np.ndarray:
        """Take `num` blocks from the head of the free queue, evicting their keys."""
        queue, pos, head = self._queue, self._pos, self._head
        if self._first_hole >= head + num:  # no hole among the next num entries
            blocks = queue[head : head + num]
            self._head = head + num
            if num <= self.max_blocks_one_by_one:  # per block: cheaper than array calls
                self._num_free -= num
                ref, slot = self._ref, self._slot
                for b in blocks.tolist():
                    pos[b] = -1
                    ref[b] = 1
                    slot[b] = -1
                return blocks
        else:
            tail = self._tail
            width = num + min(self._num_holes, num // 4 + 16)
            while True:  # the window doubles until it holds num live entries
                stop = min(tail, head + width)
                window = queue[head:stop]
                live = (pos[window] == self._index[head:stop]).nonzero()[0]
                if len(live) >= num:
                    break
                width *= 2
            live = live[:num]
            blocks = window[live]
            taken = int(live[-1]) + 1
            self._head = head = head + taken
            self._num_holes -= taken - num
            holes = self._holes
            holes.sort()  # sorted runs, appended: cheap
            del holes[: bisect_left(holes, head)]
            self._first_hole = holes[0] if holes else _NO_HOLE
        pos[blocks] = -1
        self._num_free -= num
        self._ref[blocks] = 1
        self._slot[blocks] = -1  # evict: the blocks' map entries go stale
        return blocks

    def _push(self, blocks: np.ndarray) -> None:
        """Append `blocks` (ref count 0, in order) at the tail of the free queue."""
        m = len(blocks)
        if not m:
            return
        if self._tail + m > len(self._queue):
            self._compact()
        tail = self._tail
        self._queue[tail : tail + m] = blocks
        self._pos[blocks] = self._index[tail : tail + m]
        self._tail = tail + m
        self._num_free += m

    def _compact(self) -> None:
        """Move the live queue entries to the front of the array (order kept)."""
        head, tail = self._head, self._tail
        window = self._queue[head:tail]
        live = window[self._pos[window] == self._index[head:tail]]
        n = len(live)
        self._queue[:n] = live
        self._pos[live] = self._index[:n]
        self._head, self._tail, self._num_holes = 0, n, 0
        self._holes, self._first_hole = [], _NO_HOLE

    def _num_live(self, start: int, stop: int) -> int:
        """Live queue entries at positions start..stop-1."""
        if self._first_hole >= stop:
            return stop - start
        window = self._queue[start:stop]
        return int(np.count_nonzero(self._pos[window] == self._index[start:stop]))

    def _cache_full_blocks(self, req: RequestState, num_tokens_after: int) -> None:
        """Register the request's newly full blocks whose keys are not cached yet (a key
        already cached by another block keeps that block, as in vLLM)."""
        layout = _layout(req.block_keys)
        num_full = min(num_tokens_after // self.block_size, layout.size)
        start = req.num_cached_blocks
        if num_full <= start:
            return
        req.num_cached_blocks = num_full
        table = req.block_table
        if num_full - start <= self.max_keys_one_by_one or not layout.distinct:  # key by key
            find, insert = self._find_one, self._insert_one
            for key, block in zip(layout.array[start:num_full].tolist(),
                                  table[start:num_full].tolist(), strict=True):  # fmt: skip
                if find(key) < 0:
                    insert(key, block)
            return
        i0, rows = self._run_rows(layout, start, num_full)
        blocks = table[start:num_full]
        missing = rows.count(0)
        if missing < len(rows):  # some pages are in use: are some keys cached already?
            slots = self._range_slots(layout, i0, rows, start, num_full)
            found = self._slot[self._pages[slots]] == slots
            if found.any():  # yes: register the others only
                new = (~found).nonzero()[0]
                if len(new):
                    self._insert(layout.array[start:num_full][new], blocks[new])
                return
        if missing:  # pages without a row yet
            pages = layout.pages[i0 : i0 + len(rows)]
            free = self._free_rows
            num = len(rows)
            if layout.linear and missing == num <= len(free) and free[-num] == free[-1] + num - 1:
                # all new, the next free rows consecutive: one slice of the map
                row = free[-1]
                del free[-num:]
                self._page_row.update(zip(pages, range(row, row + num), strict=True))
                self._row_page[row : row + num] = pages
                base = (row << _PAGE_BITS) + start - layout.bounds[i0]
                self._pages[base : base + len(blocks)] = blocks
                self._slot[blocks] = np.arange(base, base + len(blocks), dtype=np.intp)
                self._num_registered += len(blocks)
                return
            if layout.distinct_pages and missing <= len(free):
                rows = self._new_rows(rows, pages)
            else:
                rows = self._assign_rows(rows, pages)
            slots = self._range_slots(layout, i0, rows, start, num_full)
        self._add(slots, blocks)

    def _run_rows(self, layout: KeyLayout, start: int, stop: int) -> tuple[int, list[int]]:
        """The first run of keys[start:stop] and the row of each run (0: its page has
        none)."""
        bounds = layout.bounds
        i0 = bisect_right(bounds, start) - 1
        i1 = bisect_left(bounds, stop, i0 + 1)
        get = self._page_row.get
        return i0, [get(page, 0) for page in layout.pages[i0:i1]]

    @staticmethod
    def _range_slots(
        layout: KeyLayout, i0: int, rows: list[int], start: int, stop: int
    ) -> np.ndarray:
        """Map slots of keys[start:stop] given the rows of their runs (from run i0)."""
        if len(rows) == 1:
            return (rows[0] << _PAGE_BITS) | layout.offsets[start:stop]
        lengths = layout.lengths[i0 : i0 + len(rows)]
        lengths[0] = layout.bounds[i0 + 1] - start
        lengths[-1] = stop - layout.bounds[i0 + len(rows) - 1]
        rows = np.array(rows, dtype=np.intp).repeat(lengths)
        return (rows << _PAGE_BITS) | layout.offsets[start:stop]

    def _held_range(self, layout: KeyLayout, start: int, stop: int) -> np.ndarray | None:
        """The blocks holding any of keys[start:stop] (None when none of their pages has
        a row)."""
        i0, rows = self._run_rows(layout, start, stop)
        if not any(rows):
            return None
        slots = self._range_slots(layout, i0, rows, start, stop)
        found = self._pages[slots]
        return found[self._slot[found] == slots]

    def _find_range(self, layout: KeyLayout, start: int, stop: int) -> np.ndarray | None:
        """Block of each of keys[start:stop], -1 where not cached; None when none of
        their pages has a row (none cached)."""
        i0, rows = self._run_rows(layout, start, stop)
        if not any(rows):
            return None
        slots = self._range_slots(layout, i0, rows, start, stop)
        found = self._pages[slots]
        return np.where(self._slot[found] == slots, found, -1)

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
        rows = np.array(run_rows, dtype=np.intp).repeat(lengths) if any(run_rows) else 0
        return rows, run_rows, run_pages, lengths

    def _assign_rows(self, rows: list[int], pages: list[int]) -> list[int]:
        """`rows` (the rows of `pages`) with a row for each page that has none (0), from
        the free list. Rows are reclaimed before any is given (so a row given here is
        never one whose entries are still to be written), and then every page's row is
        looked up again: a row of `rows` whose entries were all stale may have been
        reclaimed."""
        get = self._page_row.get
        if rows.count(0) > len(self._free_rows):
            self._reclaim_rows(len(rows))
            rows = [get(page, 0) for page in pages]
        free, page_row, row_page = self._free_rows, self._page_row, self._row_page
        for i, row in enumerate(rows):
            if not row:
                page = pages[i]
                row = get(page, 0)  # a page may come back in a later run
                if not row:
                    row = free.pop()
                    page_row[page] = row
                    row_page[row] = page
                rows[i] = row
        return rows

    def _new_rows(self, rows: list[int], pages: list[int]) -> list[int]:
        """`rows` with a row for each page that has none (0), when the pages are
        distinct and the free list holds enough rows: the rows `_assign_rows` would give,
        without its checks."""
        free, page_row, row_page = self._free_rows, self._page_row, self._row_page
        if not any(rows):  # all new (the common case: one step for the dict)
            rows = free[: -len(pages) - 1 : -1]
            del free[-len(pages) :]
            page_row.update(zip(pages, rows, strict=True))
            for row, page in zip(rows, pages, strict=True):
                row_page[row] = page
            return rows
        for i, row in enumerate(rows):
            if not row:
                rows[i] = row = free.pop()
                page = pages[i]
                page_row[page] = row
                row_page[row] = page
        return rows

    def _reclaim_rows(self, needed: int) -> None:
        """Free the rows whose entries are all stale (their keys were evicted); double
        the map until at least `needed` rows, and three quarters of them, are free (so
        a sweep comes at most once per three times as many new rows as it covers). A
        row is live when a block's slot is in it (`_slot` is the truth: `_slot[b] = s`
        only while `_pages[s] == b`), so the sweep reads the blocks, not the map, and
        costs about the same however large the map (a map of 4 bytes per key slot:
        for 27,767 blocks of 32-key pages, ~1 MB)."""
        num_rows = len(self._row_page)
        slots = self._slot[:-1]
        live = np.zeros(num_rows, dtype=bool)
        live[slots[slots >= 0] >> _PAGE_BITS] = True
        row_page, page_row = self._row_page, self._page_row
        freed = ((np.array(row_page) != _NO_PAGE) & ~live).nonzero()[0].tolist()
        for row in freed:
            del page_row[row_page[row]]
            row_page[row] = _NO_PAGE
        self._free_rows.extend(freed)
        while len(self._free_rows) < max(needed, num_rows * 3 // 4):
            self._pages = np.concatenate((self._pages, np.full_like(self._pages, -1)))
            row_page.extend([_NO_PAGE] * num_rows)
            self._free_rows.extend(range(2 * num_rows - 1, num_rows - 1, -1))
            num_rows *= 2
        self._free_rows.sort(reverse=True)  # lowest rows first, whatever was freed

    def _insert(self, keys: np.ndarray, blocks: np.ndarray) -> None:
        """Cache distinct keys that are not cached, on their (unkeyed) blocks."""
        _, run_rows, run_pages, lengths = self._rows(keys >> _PAGE_BITS)
        run_rows = self._assign_rows(run_rows, run_pages)
        rows = run_rows[0] if len(run_rows) == 1 else np.array(run_rows).repeat(lengths)
        self._add((rows << _PAGE_BITS) | (keys & _OFFSET), blocks)

    def _add(self, slots: np.ndarray, blocks: np.ndarray) -> None:
        self._pages[slots] = blocks
        self._slot[blocks] = slots
        self._num_registered += len(blocks)

    def _find_one(self, key: int) -> int:
        row = self._page_row.get(key >> _PAGE_BITS, 0)
        slot = row << _PAGE_BITS | key & _OFFSET
        block = int(self._pages[slot])
        return block if self._slot[block] == slot else -1

    def _insert_one(self, key: int, block: int) -> None:
        page = key >> _PAGE_BITS
        row = self._page_row.get(page, 0) or self._assign_rows([0], [page])[0]
        slot = row << _PAGE_BITS | key & _OFFSET
        self._pages[slot] = block
        self._slot[block] = slot
        self._num_registered += 1
