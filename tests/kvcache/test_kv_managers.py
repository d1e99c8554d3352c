"""KV managers: `PrefixCachingKV` (block ids, LRU, prefix hits), `BlockCounter`, keys.

Small pools (block_size 4) so every block id and free-queue position is asserted.
"""

from __future__ import annotations

from infsim.core.request import RequestState
from infsim.kvcache.base import NO_MATCH, PrefixMatch, max_decode_steps
from infsim.kvcache.counter import BlockCounter
from infsim.kvcache.hashing import BlockKeyer
from infsim.kvcache.prefix_cache import PrefixCachingKV


def make_req(rid: int, prompt: int, output: int = 4, keys: list[int] | None = None) -> RequestState:
    return RequestState(
        index=rid,
        request_id=rid,
        arrival_s=0.0,
        num_prompt_tokens=prompt,
        num_output_tokens=output,
        block_keys=keys,
    )


def admit(kv: PrefixCachingKV, req: RequestState, n: int | None = None) -> PrefixMatch:
    """Admission as the scheduler does it: match, allocate, start at the hit length."""
    match = kv.match_prefix(req)
    hit = match.num_tokens(kv.block_size)
    n = req.num_tokens - hit if n is None else n
    assert kv.allocate(req, n, match)
    req.num_computed_tokens = hit
    return match


def check_invariants(kv: PrefixCachingKV) -> None:
    assert all(c >= 0 for c in kv.ref_cnt)
    referenced = sum(1 for c in kv.ref_cnt if c > 0)
    assert kv.num_free_blocks + referenced == kv.num_total_blocks
    assert all(kv.ref_cnt[b] == 0 for b in kv.free_queue)
    for key, block in kv.cached.items():
        assert kv.block_key[block] == key


# -- PrefixCachingKV: ids, freeing, eviction ---------------------------------------------


def test_block_ids_allocated_in_order() -> None:
    kv = PrefixCachingKV(8, 4)
    a, b = make_req(0, 9), make_req(1, 4)
    assert kv.allocate(a, 9)
    assert a.block_ids == [0, 1, 2]
    assert kv.allocate(b, 4)
    assert b.block_ids == [3]
    assert kv.ref_cnt == [1, 1, 1, 1, 0, 0, 0, 0]
    assert list(kv.free_queue) == [4, 5, 6, 7]
    assert (a.num_blocks, kv.num_free_blocks, kv.num_used_blocks) == (3, 4, 4)
    # Growing within the last block allocates nothing; crossing it takes the next id.
    a.num_computed_tokens = 9
    assert kv.allocate(a, 3)
    assert a.block_ids == [0, 1, 2]
    assert kv.allocate(a, 4)
    assert a.block_ids == [0, 1, 2, 4]
    check_invariants(kv)


def test_free_returns_blocks_to_tail_in_reverse_order() -> None:
    kv = PrefixCachingKV(6, 4)
    a, b = make_req(0, 12), make_req(1, 8)
    kv.allocate(a, 12)
    kv.allocate(b, 8)
    assert (a.block_ids, b.block_ids) == ([0, 1, 2], [3, 4])
    kv.free(a)
    assert list(kv.free_queue) == [5, 2, 1, 0]
    kv.free(b)
    assert list(kv.free_queue) == [5, 2, 1, 0, 4, 3]
    assert (a.block_ids, a.num_blocks, a.num_cached_blocks) == ([], 0, 0)
    assert kv.ref_cnt == [0] * 6
    check_invariants(kv)


def test_full_blocks_registered_when_filled_and_partial_not() -> None:
    kv = PrefixCachingKV(8, 4)
    a = make_req(0, 10, keys=[100, 101, 102])
    kv.allocate(a, 6)  # tokens 0..5: block 0 full, block 1 partial
    assert kv.cached == {100: 0}
    assert a.num_cached_blocks == 1
    a.num_computed_tokens = 6
    kv.allocate(a, 4)  # tokens 6..9: block 1 full, block 2 partial
    assert kv.cached == {100: 0, 101: 1}
    assert kv.block_key[:3] == [100, 101, None]
    assert a.num_cached_blocks == 2


def test_generated_tokens_without_keys_never_cached() -> None:
    kv = PrefixCachingKV(8, 4)
    a = make_req(0, 4, output=8, keys=[7])
    kv.allocate(a, 4)
    a.num_computed_tokens = 4
    kv.allocate(a, 5)  # decode blocks 1, 2 fill up but have no key
    assert kv.cached == {7: 0}


def test_eviction_lru_head_first_and_evicted_key_leaves_cached() -> None:
    kv = PrefixCachingKV(4, 4)
    a = make_req(0, 8, keys=[10, 11])
    b = make_req(1, 8, keys=[20, 21])
    kv.allocate(a, 8)
    kv.allocate(b, 8)
    kv.free(a)  # queue: 1, 0
    kv.free(b)  # queue: 1, 0, 3, 2
    assert list(kv.free_queue) == [1, 0, 3, 2]
    assert kv.cached == {10: 0, 11: 1, 20: 2, 21: 3}
    c = make_req(2, 5)  # no keys: needs 2 fresh blocks, evicts 1 then 0
    kv.allocate(c, 5)
    assert c.block_ids == [1, 0]
    assert kv.cached == {20: 2, 21: 3}
    assert kv.block_key == [None, None, 20, 21]
    assert kv.num_evictions == 2
    assert list(kv.free_queue) == [3, 2]
    # A prefix of A no longer hits; B's does.
    assert kv.match_prefix(make_req(3, 9, keys=[10, 11])) is NO_MATCH
    assert kv.match_prefix(make_req(4, 9, keys=[20, 21])).block_ids == [2, 3]
    check_invariants(kv)


def test_hit_on_freed_cached_block_touches_it() -> None:
    kv = PrefixCachingKV(6, 4)
    a = make_req(0, 8, keys=[1, 2])
    kv.allocate(a, 8)
    kv.free(a)
    assert list(kv.free_queue) == [2, 3, 4, 5, 1, 0]
    b = make_req(1, 10, keys=[1, 2])
    match = admit(kv, b)
    assert match.block_ids == [0, 1]
    # Hit blocks leave the free queue with ref 1; one new block from the head (2).
    assert b.block_ids == [0, 1, 2]
    assert kv.ref_cnt[:3] == [1, 1, 1]
    assert list(kv.free_queue) == [3, 4, 5]
    assert (b.num_computed_tokens, b.num_cached_blocks) == (8, 2)
    assert kv.num_evictions == 0
    check_invariants(kv)


def test_hit_on_shared_block_bumps_ref_count() -> None:
    kv = PrefixCachingKV(6, 4)
    a = make_req(0, 9, keys=[1, 2])
    admit(kv, a)
    assert a.block_ids == [0, 1, 2]
    b = make_req(1, 9, keys=[1, 2])
    assert admit(kv, b).block_ids == [0, 1]
    assert b.block_ids == [0, 1, 3]
    assert kv.ref_cnt == [2, 2, 1, 1, 0, 0]
    kv.free(a)  # shared blocks stay referenced; only A's own tail block is freed
    assert kv.ref_cnt == [1, 1, 0, 1, 0, 0]
    assert list(kv.free_queue) == [4, 5, 2]
    kv.free(b)
    assert list(kv.free_queue) == [4, 5, 2, 3, 1, 0]
    check_invariants(kv)


def test_partial_key_chain_hits_leading_blocks_only() -> None:
    kv = PrefixCachingKV(8, 4)
    admit(kv, make_req(0, 12, keys=[1, 2, 3]))
    # Same first block, different second: only one block hits.
    assert kv.match_prefix(make_req(1, 12, keys=[1, 9, 3])).block_ids == [0]
    # Different first block: nothing hits, even if later keys match.
    assert kv.match_prefix(make_req(2, 12, keys=[9, 2, 3])) is NO_MATCH
    assert kv.match_prefix(make_req(3, 12, keys=None)) is NO_MATCH


def test_hit_capped_at_num_tokens_minus_one() -> None:
    kv = PrefixCachingKV(8, 4)
    admit(kv, make_req(0, 12, keys=[1, 2, 3]))
    # Prompt of exactly 2 blocks, both cached: only 1 block hits (7 // 4).
    assert kv.match_prefix(make_req(1, 8, keys=[1, 2])).block_ids == [0]
    # 9 tokens: (9 - 1) // 4 = 2 blocks hit.
    assert kv.match_prefix(make_req(2, 9, keys=[1, 2])).block_ids == [0, 1]
    # Prompt of exactly 3 blocks: 2 hit.
    assert kv.match_prefix(make_req(3, 12, keys=[1, 2, 3])).block_ids == [0, 1]
    # Generated tokens count: prompt 8 with 1 output done -> num_tokens 9 -> 2 blocks.
    r = make_req(4, 8, keys=[1, 2])
    r.num_output_done = 1
    assert kv.match_prefix(r).block_ids == [0, 1]
    # A prompt of 4 or fewer tokens never hits.
    assert kv.match_prefix(make_req(5, 4, keys=[1])) is NO_MATCH


def test_allocation_failure_has_no_side_effects() -> None:
    kv = PrefixCachingKV(4, 4)
    a = make_req(0, 8, keys=[1, 2])
    admit(kv, a)
    kv.free(a)  # blocks 1, 0 cached and free: queue [2, 3, 1, 0]
    big = make_req(1, 17, keys=[1, 2])
    match = kv.match_prefix(big)
    assert match.block_ids == [0, 1]
    # Needs 5 blocks: 2 hits + 3 new; free queue has 4 but 2 of them are the hits.
    before = (list(kv.free_queue), dict(kv.cached), list(kv.ref_cnt), kv.num_evictions)
    assert not kv.allocate(big, 9, match)
    assert (list(kv.free_queue), dict(kv.cached), list(kv.ref_cnt), kv.num_evictions) == before
    assert (big.block_ids, big.num_blocks, big.num_cached_blocks) == ([], 0, 0)
    # 16 tokens -> 4 blocks: 2 hits + 2 new fits exactly.
    ok = make_req(2, 16, keys=[1, 2])
    m2 = kv.match_prefix(ok)
    assert kv.allocate(ok, 8, m2)
    assert ok.block_ids == [0, 1, 2, 3]
    assert kv.num_free_blocks == 0
    check_invariants(kv)


def test_allocation_failure_for_running_request_no_side_effects() -> None:
    kv = PrefixCachingKV(2, 4)
    a = make_req(0, 8)
    assert kv.allocate(a, 8)
    a.num_computed_tokens = 8
    assert not kv.allocate(a, 1)
    assert (a.block_ids, kv.num_free_blocks) == ([0, 1], 0)


def test_shared_hit_not_counted_as_evictable() -> None:
    # A hit on a block another request holds does not consume a free block.
    kv = PrefixCachingKV(3, 4)
    a = make_req(0, 5, keys=[1])
    admit(kv, a)  # blocks 0, 1; 1 free
    b = make_req(1, 8, keys=[1, 2])
    match = kv.match_prefix(b)
    assert match.block_ids == [0]
    assert kv.allocate(b, 4, match)  # 1 hit (shared) + 1 new = the last free block
    assert b.block_ids == [0, 2]
    assert kv.ref_cnt == [2, 1, 1]


def test_duplicate_key_keeps_first_block() -> None:
    # Two requests with the same keys computed concurrently (no hit at admission):
    # the key stays mapped to the first block; the duplicate is never registered.
    kv = PrefixCachingKV(4, 4)
    a, b = make_req(0, 5, keys=[1]), make_req(1, 5, keys=[1])
    kv.allocate(a, 5)
    kv.allocate(b, 5)
    assert kv.cached == {1: 0}
    assert kv.block_key == [1, None, None, None]
    kv.free(a)
    kv.free(b)
    # Block 2 (B's copy) is popped first from the head later but holds no key.
    assert list(kv.free_queue) == [1, 0, 3, 2]
    check_invariants(kv)


# -- BlockCounter -------------------------------------------------------------------------


def test_block_counter_counts() -> None:
    kv = BlockCounter(5, 4)
    a, b = make_req(0, 9), make_req(1, 4)
    assert kv.match_prefix(a) is NO_MATCH
    assert kv.allocate(a, 9)
    assert (a.num_blocks, kv.num_free_blocks, kv.num_used_blocks) == (3, 2, 3)
    a.num_computed_tokens = 9
    assert kv.allocate(a, 3)  # 12 tokens: still 3 blocks
    assert a.num_blocks == 3
    assert kv.allocate(b, 4)
    b.num_computed_tokens = 4
    assert not kv.allocate(b, 8)  # 12 tokens: 2 more blocks (3 total), 1 free
    assert (b.num_blocks, kv.num_free_blocks) == (1, 1)
    kv.free(a)
    assert (a.num_blocks, kv.num_free_blocks) == (0, 4)
    assert kv.num_cached_blocks == 0
    kv.free(b)
    assert kv.num_free_blocks == 5


def test_max_decode_steps_bound() -> None:
    kv = BlockCounter(4, 4)
    a, b = make_req(0, 3, 50), make_req(1, 6, 50)
    kv.allocate(a, 3)  # 1 block, slack 1
    kv.allocate(b, 6)  # 2 blocks, slack 2
    a.num_computed_tokens, b.num_computed_tokens = 3, 6
    # 1 free block. j steps need ceil((j-1)/4)+ + ceil((j-2)/4)+ blocks.
    # j=1: 0; j=2: 1 + 0 = 1; j=3: 1 + 1 = 2 > 1.
    assert max_decode_steps(kv, [a, b], 100) == 2
    assert max_decode_steps(kv, [a, b], 1) == 1
    kv2 = BlockCounter(100, 4)
    kv2.allocate(a, 0)
    assert max_decode_steps(kv2, [a], 7) == 7


# -- BlockKeyer ---------------------------------------------------------------------------


def test_keyer_equal_prefixes_equal_keys_up_to_covered_span() -> None:
    keyer = BlockKeyer(hash_block_size_tokens=8, block_size=4)
    k1 = keyer.keys([5, 6, 7], 24)
    k2 = keyer.keys([5, 6, 9], 24)
    k3 = keyer.keys([4, 6, 7], 24)
    assert k1 is not None
    assert k2 is not None
    assert k3 is not None
    assert len(k1) == len(k2) == 6
    # Engine blocks 0..3 lie in trace blocks 0..1 (equal): equal keys; 4..5 differ.
    assert k1[:4] == k2[:4]
    assert k1[4] != k2[4]
    assert k1[5] != k2[5]
    # A different first hash id changes every key (chained).
    assert all(x != y for x, y in zip(k1, k3, strict=True))
    assert len(set(k1)) == 6


def test_keyer_512_hash_block_with_16_block_size() -> None:
    keyer = BlockKeyer(hash_block_size_tokens=512, block_size=16)
    keys = keyer.keys([1, 2, 3], 3 * 512)
    assert keys is not None
    assert len(keys) == 96  # 32 engine blocks per hash id
    other = keyer.keys([1, 2, 4], 3 * 512)
    assert other is not None
    assert keys[:64] == other[:64]
    assert all(x != y for x, y in zip(keys[64:], other[64:], strict=True))
    # Determinism across keyers (per-simulation interning, no globals).
    assert BlockKeyer(512, 16).keys([1, 2, 3], 1536) == keys


def test_keyer_partial_coverage() -> None:
    keyer = BlockKeyer(hash_block_size_tokens=512, block_size=16)
    # Prompt of 1000 tokens with 2 hash ids (1024 tokens described): 1000 // 16 = 62.
    keys = keyer.keys([1, 2], 1000)
    assert keys is not None
    assert len(keys) == 62
    # Hash ids describe only 512 tokens of a 2000-token request: 32 keys.
    short = keyer.keys([1], 2000)
    assert short is not None
    assert len(short) == 32
    assert short == keys[:32]
    # Less than one engine block covered, or no ids: no keys.
    assert keyer.keys([1], 15) is None
    assert keyer.keys([], 1000) is None


def test_keyer_straddling_blocks_depend_on_both_trace_blocks() -> None:
    # hash block 6 tokens, engine block 4: engine block 1 (tokens 4..7) straddles trace
    # blocks 0 and 1, so its key depends on hash id 1 too.
    keyer = BlockKeyer(hash_block_size_tokens=6, block_size=4)
    a = keyer.keys([1, 2], 12)
    b = keyer.keys([1, 3], 12)
    assert a is not None
    assert b is not None
    assert len(a) == len(b) == 3
    assert a[0] == b[0]
    assert a[1] != b[1]
    assert a[2] != b[2]
