"""The keyer gives the keys of the straightforward keyer, call after call on one intern
table, each of its ways: the dict (cached positions and trace-block indices, a repeat when
a trace block is a whole number of engine blocks) and the kernels' array table
(`pool_kernels.chain_keys`), as plain Python and compiled (numba's JIT, or the
ahead-of-time build in the compiled package). Hash ids come as lists or int64 arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.kvcache import prefix_cache as pc
from infsim.kvcache.hashing import BlockKeyer
from tests.kvcache.reference_keyer import ReferenceBlockKeyer

calls = st.lists(
    st.tuples(
        st.lists(st.one_of(st.integers(0, 4), st.integers(-(2**63), 2**63 - 1)), max_size=40),
        st.integers(0, 25_000),  # tokens (past 1,024 blocks: the cached positions grow)
    ),
    min_size=1,
    max_size=30,
)
WAYS = ("dict", "plain kernels", "compiled kernels")


def _keyer(way: str, sizes: tuple[int, int]) -> BlockKeyer:
    kernels = None
    if way == "plain kernels":
        kernels = pc._load_plain()
    elif way == "compiled kernels":
        kernels = pc.compiled_kernels()
        if kernels is None:
            pytest.skip("numba is not available or disabled")
    return BlockKeyer(*sizes, kernels)


@pytest.mark.parametrize("way", WAYS)
@settings(max_examples=150, deadline=None)
@given(
    sizes=st.sampled_from([(512, 16), (512, 128), (8, 4), (10, 4), (3, 4), (16, 16), (100, 7)]),
    requests=calls,
    as_arrays=st.booleans(),
)
def test_keyer_matches_the_straightforward_keyer(
    way: str, sizes: tuple[int, int], requests: list[tuple[list[int], int]], as_arrays: bool
) -> None:
    keyer, reference = _keyer(way, sizes), ReferenceBlockKeyer(*sizes)
    for hash_ids, tokens in requests:
        given_ids = np.array(hash_ids, dtype=np.int64) if as_arrays else hash_ids
        keys, expected = keyer.keys(given_ids, tokens), reference.keys(hash_ids, tokens)
        if expected is None:
            assert keys is None
        else:
            assert keys.array.dtype == np.int64
            assert np.array_equal(keys.array, expected)
    assert keyer.num_chains == len(reference._chains)
    if way == "dict":  # the same interning, also past num_tokens (a 40-bit id's pair: one int)
        pairs = {
            (p << 40 | h if 0 <= h < 1 << 40 else (p, h)): c
            for (p, h), c in reference._chains.items()
        }
        assert keyer._chains == pairs


@pytest.mark.parametrize("way", WAYS)
def test_keyer_grows_its_tables_for_long_requests(way: str) -> None:
    """Long requests: the dict keyer's cached positions and the kernels' intern table
    (1,024 slots at first, so 300 and then 700 new ids make it grow twice)."""
    for sizes in ((512, 16), (100, 7)):
        keyer, reference = _keyer(way, sizes), ReferenceBlockKeyer(*sizes)
        for first, num_ids, tokens in ((0, 2, 100), (0, 70, 30_000), (0, 300, 140_000),
                                       (0, 3, 1_000), (1_000, 700, 400_000),
                                       (0, 300, 150_000)):  # fmt: skip
            hash_ids = list(range(first, first + num_ids))
            keys = keyer.keys(hash_ids, tokens)
            assert np.array_equal(keys.array, reference.keys(hash_ids, tokens))
        assert keyer.num_chains == len(reference._chains) == 1_000
