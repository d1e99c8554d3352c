"""The prefix pool's array layout, shared by the pool (`prefix_cache`) and its kernels
(`pool_kernels`, and the ahead-of-time build of them): no numba import here."""

EMPTY = -1  # a free slot of the page table
NUM_FREE, NUM_EVICTIONS, NUM_CACHED, NUM_FREE_ROWS = 0, 1, 2, 3  # entries of `meta`
QUEUE_HEAD, QUEUE_TAIL = 4, 5  # entries of `meta`: the free queue's span of `ring`
NUM_META = 6
PAGE_BITS = 5  # a page: 32 consecutive keys (key >> 5), one row of the key map
OFFSET = (1 << PAGE_BITS) - 1
