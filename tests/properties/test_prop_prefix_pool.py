"""The kernel prefix-caching pool is the per-block pool, operation for operation.

`PrefixCachingKV` (its kernels, numba's or their plain-Python copy, over arrays: a
linked-list free queue, a paged key map) and the per-block oracle
`ReferencePrefixCachingKV` (tests/kvcache/reference_pool.py, a plain `OrderedDict` pool)
are driven with the same random sequences of admissions (prefix match + allocate), growth
(chunks, decode tokens, lookahead slots), frees, run-limit queries and router probes (half
the requests give the fast pool their keys as `BlockKeys` arrays). After every operation
both must agree on every return value, every request's block ids and cached-block count,
the free queue in order, ref counts, block keys, the cached map and the eviction count.
Small pools with shared, branching key chains make evictions, touches of free cached
blocks, duplicate registrations, new rows of the key map and deletions from its page table
frequent.
"""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.core.request import RequestState
from infsim.kvcache.base import NO_MATCH
from infsim.kvcache.hashing import BlockKeyer, BlockKeys
from infsim.kvcache.prefix_cache import PrefixCachingKV
from tests.kvcache.kernel_tiers import kernel_tier
from tests.kvcache.reference_pool import ReferencePrefixCachingKV

BLOCK_SIZE = 4
NUM_DOCS = 3

request_specs = st.lists(
    st.tuples(
        st.integers(1, 48),  # prompt tokens
        st.integers(1, 12),  # output tokens
        st.integers(0, NUM_DOCS - 1),  # document the keys come from
        st.integers(0, NUM_DOCS - 1),  # document of the keys before the branch
        st.integers(0, 12),  # branch block
        st.sampled_from(["prompt", "all", "all", "none"]),  # which blocks have keys
        # key stride: 37 puts every key in a page of its own; 0: keys alternate between
        # two pages (a page comes back after another, and positions do not increase)
        st.sampled_from([1, 37, 0]),
    ),
    min_size=2,
    max_size=7,
)

admit = st.tuples(st.just("admit"), st.integers(0, 6), st.integers(1, 64))
step = st.tuples(st.just("step"), st.integers(0, 6), st.integers(1, 20), st.integers(0, 4))
release = st.tuples(st.just("free"), st.integers(0, 6))
operations = st.lists(
    st.one_of(
        admit,
        admit,
        step,
        step,
        release,
        release,
        st.tuples(st.just("run"), st.integers(1, 40)),
        st.tuples(st.just("probe"), st.integers(0, 6)),
    ),
    min_size=10,
    max_size=120,
)


def keys_of(spec: tuple) -> list[int] | None:
    prompt, output, doc, root, branch, which, stride = spec
    if which == "none":
        return None
    num = (prompt if which == "prompt" else prompt + output) // BLOCK_SIZE
    if stride == 0:
        return [(root if j < branch else doc) * 1000 + j + 64 * (j % 2) for j in range(num)]
    return [(root if j < branch else doc) * 1000 + j * stride for j in range(num)]


def make(i: int, spec: tuple, as_array: bool = False, keys: object = ()) -> RequestState:
    """A request of `spec`; `as_array`: its keys as `BlockKeys` (an int64 array, as the
    trace's keyer makes them) instead of a list; `keys`: these keys instead."""
    if keys == ():
        keys = keys_of(spec)
        if as_array and keys is not None:
            keys = BlockKeys(np.array(keys, dtype=np.int64))
    return RequestState(
        index=i,
        request_id=i,
        arrival_s=0.0,
        num_prompt_tokens=spec[0],
        num_output_tokens=spec[1],
        block_keys=keys,
    )


def assert_same(fast: PrefixCachingKV, ref: ReferencePrefixCachingKV, pairs: list) -> None:
    assert fast.num_free_blocks == ref.num_free_blocks
    assert fast.num_used_blocks == ref.num_used_blocks
    assert fast.num_cached_blocks == ref.num_cached_blocks
    assert fast.num_evictions == ref.num_evictions
    assert fast.free_queue == list(ref.free_queue)
    assert fast.ref_cnt == ref.ref_cnt
    assert fast.block_key == ref.block_key
    assert fast.cached == ref.cached
    for a, b in pairs:
        assert a.block_ids == b.block_ids
        assert (a.num_blocks, a.num_cached_blocks) == (b.num_blocks, b.num_cached_blocks)


def make_pairs(specs: list[tuple], keyer: BlockKeyer | None) -> list[tuple]:
    """(fast pool's, oracle's) request of each spec. Without a keyer the fast pool's
    requests alternate list keys and array keys; with one, its keys are the keyer's
    (`BlockKeys`) for trace ids that follow the spec's
    documents. The oracle's keys are lists."""
    if keyer is None:
        return [(make(i, s, as_array=i % 2 == 1), make(i, s)) for i, s in enumerate(specs)]
    pairs = []
    for i, spec in enumerate(specs):
        prompt, output, doc, root, branch, which, _ = spec
        tokens = prompt if which == "prompt" else prompt + output
        num_ids = -(-tokens // keyer.hash_block_size_tokens)
        ids = [(root if t < branch else doc) * 1000 + t for t in range(num_ids)]
        keys = keyer.keys(ids, tokens) if which != "none" else None
        pairs.append((make(i, spec, keys=keys), make(i, spec, keys=keys and list(keys))))
    return pairs


def drive(
    num_blocks: int,
    specs: list[tuple],
    ops: list[tuple],
    keyer: BlockKeyer | None = None,
    compiled: bool | None = None,
) -> int:
    """Run `ops` on both pools, checking them after each; returns the evictions. The
    pool runs numba's kernels (`compiled`), the plain-Python ones, or (None) those the
    process has now."""
    if compiled is None:
        return _drive(num_blocks, specs, ops, keyer)
    with kernel_tier(compiled):
        return _drive(num_blocks, specs, ops, keyer)


def _drive(num_blocks: int, specs: list[tuple], ops: list[tuple], keyer: BlockKeyer | None) -> int:
    fast = PrefixCachingKV(num_blocks, BLOCK_SIZE)
    ref = ReferencePrefixCachingKV(num_blocks, BLOCK_SIZE)
    pairs = make_pairs(specs, keyer)
    active = [False] * len(pairs)
    for op in ops:
        kind, *args = op
        if kind in ("admit", "step", "free", "probe"):
            i = args[0] % len(pairs)
            a, b = pairs[i]
        if kind == "admit" and not active[i]:
            ma, mb = fast.match_prefix(a), ref.match_prefix(b)
            assert ma.block_ids == mb.block_ids
            hit = ma.num_tokens(BLOCK_SIZE)
            n = min(args[1], a.num_tokens - hit)
            ok = fast.allocate(a, n, ma)
            assert ok == ref.allocate(b, n, mb)
            if ok:
                active[i] = True
                for r in (a, b):
                    r.num_computed_tokens = hit + n
        elif kind == "step" and active[i]:
            n = min(args[1], a.num_tokens - a.num_computed_tokens)
            lookahead = args[2]
            if n or lookahead:
                ok = fast.allocate(a, n, NO_MATCH, lookahead)
                assert ok == ref.allocate(b, n, NO_MATCH, lookahead)
                if ok:
                    for r in (a, b):
                        r.num_computed_tokens += n
                        sampled = r.num_computed_tokens == r.num_tokens
                        if sampled and r.num_output_done < r.num_output_tokens - 1:
                            r.num_output_done += 1
        elif kind == "free":
            fast.free(a)
            ref.free(b)
            active[i] = False
            for r in (a, b):
                r.num_computed_tokens = 0
        elif kind == "run":
            running_a = [p[0] for p, on in zip(pairs, active, strict=True) if on]
            running_b = [p[1] for p, on in zip(pairs, active, strict=True) if on]
            assert fast.num_free_blocks_for_run(running_a, args[0]) == (
                ref.num_free_blocks_for_run(running_b, args[0])
            )
        elif kind == "probe" and a.block_keys:
            assert fast.num_cached_prefix_blocks(a.block_keys) == (
                ref.num_cached_prefix_blocks(b.block_keys)
            )
        assert_same(fast, ref, pairs)
    return ref.num_evictions


def random_ops(
    rng: random.Random,
    num_specs: int,
    num_ops: int,
    *,
    admit: int,
    step: int,
    run: int,
    lookahead: tuple[int, ...] = (0,),
    whole_prompts: bool = False,
) -> list[tuple]:
    """`num_ops` operations for `drive` on requests 0..num_specs-1 (admissions and steps
    twice as likely as frees, run limits and probes): admissions of 1..`admit` tokens
    (`whole_prompts`: half of them all `admit`), steps of 1..`step` tokens with lookahead
    slots from `lookahead`, run limits of 1..`run` steps."""
    ops: list[tuple] = []
    for _ in range(num_ops):
        kind = rng.choice(["admit", "admit", "step", "step", "step", "free", "run", "probe"])
        i = rng.randrange(num_specs)
        if kind == "admit":
            tokens = rng.randint(1, admit)
            ops.append((kind, i, rng.choice([tokens, admit]) if whole_prompts else tokens))
        elif kind == "step":
            ops.append((kind, i, rng.randint(1, step), rng.choice(lookahead)))
        elif kind == "run":
            ops.append((kind, rng.randint(1, run)))
        else:
            ops.append((kind, i))
    return ops


@settings(max_examples=400, deadline=None)
@given(num_blocks=st.integers(1, 20), specs=request_specs, ops=operations, compiled=st.booleans())
def test_kernel_pool_matches_per_block_pool(
    num_blocks: int, specs: list[tuple], ops: list[tuple], compiled: bool
) -> None:
    """Both kernel tiers (numba's and the plain-Python copy) against the oracle."""
    drive(num_blocks, specs, ops, compiled=compiled)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_long_churning_workloads_match(seed: int) -> None:
    """Hundreds of operations over many requests sharing prefixes in a pool that is
    always short of blocks: evictions on most allocations, as on a long trace."""
    rng = random.Random(seed)
    specs = [
        (
            rng.randint(4, 60),
            rng.randint(1, 16),
            rng.randrange(NUM_DOCS),
            rng.randrange(NUM_DOCS),
            rng.randint(0, 15),
            rng.choice(["prompt", "all", "all", "none"]),
            rng.choice([1, 1, 37, 0]),
        )
        for _ in range(rng.randint(4, 24))
    ]
    ops = random_ops(rng, len(specs), 400, admit=64, step=24, run=40, lookahead=(0, 0, 0, 3))
    drive(rng.randint(4, 40), specs, ops, compiled=seed % 2 == 0)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_keyer_requests_match(seed: int) -> None:
    """Requests keyed by the trace keyer (hundreds of consecutive keys per request), in
    pools short of blocks."""
    rng = random.Random(seed)
    per = rng.choice([32, 32, 32, 64, 2, 24])  # engine blocks per trace block
    keyer = BlockKeyer(per * BLOCK_SIZE, BLOCK_SIZE)
    specs = [
        (
            rng.randint(4, 600),
            rng.randint(1, 60),
            rng.randrange(NUM_DOCS),
            rng.randrange(NUM_DOCS),
            rng.randint(0, 6),
            rng.choice(["prompt", "all", "all", "none"]),
            1,
        )
        for _ in range(rng.randint(2, 10))
    ]
    ops = random_ops(rng, len(specs), 300, admit=600, step=300, run=300, lookahead=(0, 0, 3),
                     whole_prompts=True)  # fmt: skip
    drive(rng.randint(16, 400), specs, ops, keyer, compiled=seed % 2 == 0)
