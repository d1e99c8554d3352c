"""Fast paths of the prefix-caching pool that random workloads reach rarely, each against
the per-block oracle (tests/kvcache/reference_pool.py)."""

from __future__ import annotations

from infsim.core.request import RequestState
from infsim.kvcache.base import NO_MATCH
from infsim.kvcache.hashing import BlockKeyer
from infsim.kvcache.prefix_cache import PrefixCachingKV
from tests.kvcache.reference_pool import ReferencePrefixCachingKV

BS = 4


def request(i: int, keys: object, tokens: int) -> RequestState:
    return RequestState(index=i, request_id=i, arrival_s=0.0, num_prompt_tokens=tokens,
                        num_output_tokens=1, block_keys=keys)  # fmt: skip


def test_whole_pages_on_free_rows_that_are_not_consecutive() -> None:
    """A registration of whole new pages takes one slice of the map only when the next
    free rows are consecutive; here a row in between holds another request's page."""
    keyer = BlockKeyer(32 * BS, BS)  # a trace block per 32-key page
    fast, ref = PrefixCachingKV(200, BS), ReferencePrefixCachingKV(200, BS)
    fast._free_rows = [5, 2]  # the first page takes row 2
    one = keyer.keys([1], 32 * BS)
    two = keyer.keys([2, 3], 64 * BS)
    for pool, wrap in ((fast, lambda k: k), (ref, list)):
        a = request(0, wrap(one), 32 * BS)
        assert pool.allocate(a, 32 * BS, NO_MATCH)
    fast._free_rows = [3, 1]  # rows 1 and 3 free, row 2 holds the first request's page
    for pool, wrap in ((fast, lambda k: k), (ref, list)):
        b = request(1, wrap(two), 64 * BS)
        assert pool.allocate(b, 64 * BS, NO_MATCH)
    assert fast.cached == ref.cached
    assert len(fast.cached) == 96
