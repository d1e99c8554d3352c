"""The prefix-caching pool's per-block loops, compiled by numba (`PrefixCachingKV`'s state).

The pool is vLLM V1's `BlockPool` block by block (tests/kvcache/reference_pool.py is the
same semantics in plain Python and the property tests' oracle); what makes it fast is
that each operation is one call of a compiled loop over its blocks, so a 750-block
prompt costs microseconds, not one interpreter step per block. State, all numpy arrays
owned by the pool (n blocks):

    ref[b]       reference count of block b
    ring, pos    the free queue, head (evicted first) to tail, as the live entries of
                 ring[meta[QUEUE_HEAD]:meta[QUEUE_TAIL]]: ring[i] = b is live when
                 pos[b] == i; pos[b] = -1 when b is not free. A block leaves the queue
                 by its entry going stale (a pop advances the head past it, a prefix
                 hit on it sets pos[b] = -1); a freed block is appended at the tail.
                 When the tail reaches the end of ring (4n + 4 entries, at most n of
                 them live) the live entries move to its front, in order: O(1) amortised
                 per block (a move of at most 4n entries per 3n appended), and a pop
                 reads ring forwards, with no chain of dependent loads as a linked list
                 has (pop and free ~3x faster per block, 8 pools of 30,000 random blocks;
                 the compiled Mooncake run ~5 % faster)
    the cached map key -> block, paged: a key's page is key >> 5 (32 consecutive keys,
    so a request's keys fill pages in order and each page costs one hash probe, its
    keys then one array read or write each, in consecutive memory):
    pages        open-addressing table page -> row (linear probing, deletion by
                 backward shift, no tombstones; EMPTY = -1): pages[2i] slot i's page,
                 pages[2i + 1] its row; capacity a power of two >= 2 * rows, so the
                 load stays <= 1/2
    rows         rows[row << 5 | key & 31] = the block caching key, -1 for none
    rowmeta      per row r: [3r] its page (-1: free), [3r + 1] its number of keys, and
                 [3r + 2] the free-row stack (its first meta[NUM_FREE_ROWS] entries)
    slot_of[b]   where block b's key is in rows, -1 when b caches none
    meta         [free blocks, evictions, cached keys, free rows, queue head, queue tail]

A row is freed (and its page leaves the table) when its last key is evicted. The pool
grows rows and pages before a call that could run out of rows (`PrefixCachingKV`).
Keys are non-negative integers below 2**63. The same functions also run as plain Python:
the pool loads this file a second time as `pool_kernels_plain` (no numba import) for the
first block operations of a process, and without numba (or with NUMBA_DISABLE_JIT=1) it
has only those, and says so once (`infsim.kvcache.prefix_cache`). Identical results.
The keyer's kernels (`chain_keys`, `rehash_chains`: trace hash ids -> block keys, for
`hashing.BlockKeyer`) live here too, so they share the compiled tiers.
"""

from __future__ import annotations

import numpy as np

from infsim.kvcache.pool_layout import (
    EMPTY,
    NUM_CACHED,
    NUM_EVICTIONS,
    NUM_FREE,
    NUM_FREE_ROWS,
    OFFSET,
    PAGE_BITS,
    QUEUE_HEAD,
    QUEUE_TAIL,
)

try:
    if __name__.endswith("_plain"):  # the plain-Python copy (prefix_cache._load_plain)
        raise ImportError
    import numba

    def _jit(f):
        """numba's, its machine code cached on disk (next to this file, else in the
        user's cache folder); where neither is writable (a read-only install and home),
        compiled afresh in each process (~1.3 s) rather than not at all."""
        try:
            return numba.njit(cache=True, nogil=True)(f)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            return numba.njit(nogil=True)(f)

    JIT = not numba.config.DISABLE_JIT  # type: ignore[attr-defined]
except ImportError:  # the plain copy; or no numba (a dependency; exotic platforms only)

    def _jit(f):
        return f

    JIT = False


@_jit
def _home(page: int, mask: int) -> int:
    """Table slot a page is probed from (its 62 low bits mixed, no product past 2**63)."""
    h = (page & 0x7FFFFFFF) * 0x5BD1E995 + ((page >> 31) & 0x7FFFFFFF) * 0x1B873593
    return (h ^ (h >> 29)) & mask


@_jit
def _row_of(pages: np.ndarray, page: int) -> int:
    """The row of `page`, -1 when it has none."""
    mask = (len(pages) >> 1) - 1
    i = _home(page, mask)
    while True:
        p = pages[2 * i]
        if p == page:
            return pages[2 * i + 1]
        if p == EMPTY:
            return -1
        i = (i + 1) & mask


@_jit
def _page_insert(pages: np.ndarray, page: int, row: int) -> None:
    """Add a page that is not in the table."""
    mask = (len(pages) >> 1) - 1
    i = _home(page, mask)
    while pages[2 * i] != EMPTY:
        i = (i + 1) & mask
    pages[2 * i] = page
    pages[2 * i + 1] = row


@_jit
def _page_delete(pages: np.ndarray, page: int) -> None:
    """Remove a page that is in the table, shifting later entries of its probe run back
    into the hole (an entry moves when its home slot is not cyclically in (hole, j])."""
    mask = (len(pages) >> 1) - 1
    i = _home(page, mask)
    while pages[2 * i] != page:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        p = pages[2 * j]
        if p == EMPTY:
            break
        h = _home(p, mask)
        if (i < j and (h <= i or h > j)) or (j < i and h <= i and h > j):
            pages[2 * i] = p
            pages[2 * i + 1] = pages[2 * j + 1]
            i = j
    pages[2 * i] = EMPTY


@_jit
def _compact(ring: np.ndarray, pos: np.ndarray, head: int, tail: int) -> int:
    """Move the queue's live entries in ring[head:tail] to its front, in order; the new
    tail (the head is then 0)."""
    j = 0
    for i in range(head, tail):
        b = ring[i]
        if pos[b] == i:
            ring[j] = b
            pos[b] = j
            j += 1
    return j


@_jit
def match(pages: np.ndarray, rows: np.ndarray, keys: np.ndarray, limit: int,
          out: np.ndarray) -> int:  # fmt: skip
    """Blocks of the leading cached keys among keys[:limit] into `out`; their number."""
    last_page = -1
    row = -1
    for i in range(limit):
        key = keys[i]
        page = key >> PAGE_BITS
        if page != last_page:
            row = _row_of(pages, page)
            last_page = page
        if row < 0:
            return i
        b = rows[(row << PAGE_BITS) | (key & OFFSET)]
        if b < 0:
            return i
        out[i] = b
    return limit


@_jit
def allocate(  # noqa: PLR0913 - one compiled call per allocation: the state and the request
             ref: np.ndarray, slot_of: np.ndarray, ring: np.ndarray, pos: np.ndarray,
             pages: np.ndarray, rows: np.ndarray, rowmeta: np.ndarray, meta: np.ndarray,
             table: np.ndarray, num_held: int, hits: np.ndarray, num_hits: int, need: int,
             keys: np.ndarray, reg_start: int, reg_stop: int) -> bool:  # fmt: skip
    """Take the hit blocks (touch: out of the free queue, ref + 1) into table[num_held:],
    then `need` blocks from the head of the free queue (evicting their keys), then cache
    keys[reg_start:reg_stop] on table[reg_start:reg_stop] where not cached yet (a key
    cached by another block keeps it). False, changing nothing, when the free blocks
    minus the idle hit blocks are fewer than `need`. The caller makes sure at least
    reg_stop - reg_start rows are free."""
    idle = 0
    for i in range(num_hits):
        if ref[hits[i]] == 0:
            idle += 1
    if need > meta[NUM_FREE] - idle:
        return False
    for i in range(num_hits):
        b = hits[i]
        if ref[b] == 0:
            pos[b] = -1  # its queue entry goes stale
        ref[b] += 1
        table[num_held + i] = b
    meta[NUM_FREE] -= idle
    at = num_held + num_hits
    h = meta[QUEUE_HEAD]
    for _ in range(need):
        b = ring[h]
        while pos[b] != h:  # a stale entry: skip it
            h += 1
            b = ring[h]
        pos[b] = -1
        h += 1
        s = slot_of[b]
        if s >= 0:  # evict its key
            rows[s] = -1
            slot_of[b] = -1
            r = s >> PAGE_BITS
            rowmeta[3 * r + 1] -= 1
            if rowmeta[3 * r + 1] == 0:  # the row's last key: free the row
                _page_delete(pages, rowmeta[3 * r])
                rowmeta[3 * r] = -1
                rowmeta[3 * meta[NUM_FREE_ROWS] + 2] = r
                meta[NUM_FREE_ROWS] += 1
            meta[NUM_EVICTIONS] += 1
            meta[NUM_CACHED] -= 1
        ref[b] = 1
        table[at] = b
        at += 1
    meta[QUEUE_HEAD] = h
    if need > 0:
        meta[NUM_FREE] -= need
    last_page = -1
    row = -1
    for i in range(reg_start, reg_stop):
        key = keys[i]
        page = key >> PAGE_BITS
        if page != last_page:
            row = _row_of(pages, page)
            last_page = page
        if row < 0:  # a new page: a row from the free stack
            meta[NUM_FREE_ROWS] -= 1
            row = rowmeta[3 * meta[NUM_FREE_ROWS] + 2]
            rowmeta[3 * row] = page
            rowmeta[3 * row + 1] = 0
            _page_insert(pages, page, row)
        s = (row << PAGE_BITS) | (key & OFFSET)
        if rows[s] < 0:
            b = table[i]
            rows[s] = b
            slot_of[b] = s
            rowmeta[3 * row + 1] += 1
            meta[NUM_CACHED] += 1
    return True


@_jit
def free(ref: np.ndarray, ring: np.ndarray, pos: np.ndarray, meta: np.ndarray,
         table: np.ndarray, num: int) -> None:  # fmt: skip
    """Release table[:num] in reverse order: a block whose count reaches 0 joins the tail
    of the free queue (a request's tail blocks are evicted before its head blocks)."""
    tail = meta[QUEUE_TAIL]
    freed = 0
    for i in range(num - 1, -1, -1):
        b = table[i]
        ref[b] -= 1
        if ref[b] == 0:
            if tail == len(ring):
                tail = _compact(ring, pos, meta[QUEUE_HEAD], tail)
                meta[QUEUE_HEAD] = 0
            ring[tail] = b
            pos[b] = tail
            tail += 1
            freed += 1
    meta[QUEUE_TAIL] = tail
    meta[NUM_FREE] += freed


@_jit
def free_for_run(  # noqa: PLR0913 - one compiled call: the pool's state and the run's keys
                 ref: np.ndarray, ring: np.ndarray, pos: np.ndarray, pages: np.ndarray,
                 rows: np.ndarray, meta: np.ndarray, mark: np.ndarray, pending: np.ndarray,
                 max_need: int) -> int:  # fmt: skip
    """`PrefixCachingKV.num_free_blocks_for_run` given the keys the run may register:
    0 when a key is pending twice; else the free blocks queued before the first free
    block caching a pending key (at most max_need), or all free blocks when none does.
    `mark` is scratch (all 0 on entry and on return)."""
    m = len(pending)
    if m > 1:
        ordered = np.sort(pending)
        for i in range(1, m):
            if ordered[i] == ordered[i - 1]:
                return 0
    marked = np.empty(m, dtype=np.int64)
    num_marked = 0
    for i in range(m):
        key = pending[i]
        row = _row_of(pages, key >> PAGE_BITS)
        if row >= 0:
            b = rows[(row << PAGE_BITS) | (key & OFFSET)]
            if b >= 0 and ref[b] == 0:
                mark[b] = 1
                marked[num_marked] = b
                num_marked += 1
    if num_marked == 0:
        return meta[NUM_FREE]
    before = 0
    i = meta[QUEUE_HEAD]
    tail = meta[QUEUE_TAIL]
    while before < max_need and i < tail:  # (a marked block is queued: it stops there)
        b = ring[i]
        if pos[b] == i:
            if mark[b]:
                break
            before += 1
        i += 1
    for i in range(num_marked):
        mark[marked[i]] = 0
    return before


@_jit
def queue_order(ring: np.ndarray, pos: np.ndarray, meta: np.ndarray, out: np.ndarray) -> None:
    """The free queue, head to tail, into `out` (sized to the number of free blocks)."""
    j = 0
    for i in range(meta[QUEUE_HEAD], meta[QUEUE_TAIL]):
        b = ring[i]
        if pos[b] == i:
            out[j] = b
            j += 1


@_jit
def rehash(rowmeta: np.ndarray, pages: np.ndarray) -> None:
    """Insert every live row's page into an empty `pages` table (after the rows grew)."""
    for r in range(len(rowmeta) // 3):
        page = rowmeta[3 * r]
        if page >= 0:
            _page_insert(pages, page, r)


# -- block keys from a trace's hash ids (`hashing.BlockKeyer`) ------------------------------
# The keyer's intern table (parent chain, hash id) -> chain, open addressing (linear
# probing, never deleted): chains[3i] slot i's parent, [3i + 1] its hash id, [3i + 2] its
# chain (-1: empty); capacity a power of two, kept >= 2 * (count + a request's ids) by
# the keyer. num_chains[0] counts the chains: new ones are numbered in order of first
# sight, as the keyer's dict numbers them.


@_jit
def _chain_home(parent: int, hash_id: int, mask: int) -> int:
    """Table slot a (parent, hash id) pair is probed from (no product past 2**63)."""
    h = (parent & 0x7FFFFFFF) * 0x5BD1E995 + (hash_id & 0x7FFFFFFF) * 0x1B873593
    h ^= (((hash_id ^ parent) >> 31) & 0x7FFFFFFF) * 0x2545F491
    return (h ^ (h >> 29)) & mask


@_jit
def _chain_slot(chains: np.ndarray, parent: int, hash_id: int) -> int:
    """The slot holding (parent, hash id), or the empty slot where it goes."""
    mask = len(chains) // 3 - 1
    i = _chain_home(parent, hash_id, mask)
    while chains[3 * i + 2] >= 0 and (chains[3 * i] != parent or chains[3 * i + 1] != hash_id):
        i = (i + 1) & mask
    return i


@_jit
def chain_keys(chains: np.ndarray, num_chains: np.ndarray, hash_ids: np.ndarray,
               num_blocks: int, block_size: int, hash_block_size: int,
               position_bits: int, out: np.ndarray) -> None:  # fmt: skip
    """Intern every hash id's chain (also past the blocks keyed) and write the first
    `num_blocks` engine blocks' keys into `out`: block j's is the chain of its last trace
    block t(j) = ((j + 1) * block_size - 1) // hash_block_size, shifted, or j."""
    parent = -1
    j = 0
    for t in range(len(hash_ids)):
        hash_id = hash_ids[t]
        i = _chain_slot(chains, parent, hash_id)
        chain = chains[3 * i + 2]
        if chain < 0:
            chain = num_chains[0]
            num_chains[0] = chain + 1
            chains[3 * i] = parent
            chains[3 * i + 1] = hash_id
            chains[3 * i + 2] = chain
        parent = chain
        # t(j) == t for the blocks up to (t + 1) * hash_block_size tokens
        stop = min(num_blocks, (t + 1) * hash_block_size // block_size)
        high = chain << position_bits
        while j < stop:
            out[j] = high | j
            j += 1


@_jit
def rehash_chains(old: np.ndarray, chains: np.ndarray) -> None:
    """Insert every pair of `old` into the empty, larger table `chains`."""
    for i in range(len(old) // 3):
        if old[3 * i + 2] >= 0:
            k = _chain_slot(chains, old[3 * i], old[3 * i + 1])
            chains[3 * k] = old[3 * i]
            chains[3 * k + 1] = old[3 * i + 1]
            chains[3 * k + 2] = old[3 * i + 2]


AOT_SIGNATURES = {
    "match": "i8(i8[::1], i4[::1], i8[::1], i8, i8[::1])",
    "allocate": "b1(i4[::1], i8[::1], i8[::1], i8[::1], i8[::1], i4[::1], i8[::1], i8[::1],"
    " i8[::1], i8, i8[::1], i8, i8, i8[::1], i8, i8)",
    "free": "void(i4[::1], i8[::1], i8[::1], i8[::1], i8[::1], i8)",
    "free_for_run": "i8(i4[::1], i8[::1], i8[::1], i8[::1], i4[::1], i8[::1], i1[::1], i8[::1],"
    " i8)",
    "queue_order": "void(i8[::1], i8[::1], i8[::1], i8[::1])",
    "rehash": "void(i8[::1], i8[::1])",
    "chain_keys": "void(i8[::1], i8[::1], i8[::1], i8, i8, i8, i8, i8[::1])",
    "rehash_chains": "void(i8[::1], i8[::1])",
}
"""The kernels' types as the pool calls them (ref and rows int32, mark int8, all else
int64; block tables are intp, int64 on the 64-bit platforms the compiled build targets),
for numba's ahead-of-time build of this module (hatch_build.py). Every array is
C-contiguous (`[::1]`), as numba's JIT specialises them when it sees them: an array of
any layout (`[:]`) costs a stride multiplication per index, and the compiled build's
Mooncake run 6 % (perf: `imul` beside each load of the free queue's links)."""
