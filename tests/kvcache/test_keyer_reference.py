"""The keyer (cached positions and trace-block indices, a repeat when a trace block is a
whole number of engine blocks) gives the keys of the straightforward keyer, call after
call on one intern table."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.kvcache.hashing import BlockKeyer
from tests.kvcache.reference_keyer import ReferenceBlockKeyer

calls = st.lists(
    st.tuples(
        st.lists(st.one_of(st.integers(0, 4), st.integers(-2, 2**41)), max_size=40),
        st.integers(0, 25_000),  # tokens (past 1,024 blocks: the cached positions grow)
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.sampled_from([(512, 16), (512, 128), (8, 4), (10, 4), (3, 4), (16, 16), (100, 7)]),
    requests=calls,
)
def test_keyer_matches_the_straightforward_keyer(
    sizes: tuple[int, int], requests: list[tuple[list[int], int]]
) -> None:
    keyer, reference = BlockKeyer(*sizes), ReferenceBlockKeyer(*sizes)
    for hash_ids, tokens in requests:
        keys, expected = keyer.keys(hash_ids, tokens), reference.keys(hash_ids, tokens)
        if expected is None:
            assert keys is None
        else:
            assert keys.array.dtype == np.int64
            assert np.array_equal(keys.array, expected)
    # the same interning, also past num_tokens (pairs with a 40-bit id as one int)
    pairs = {
        (p << 40 | h if 0 <= h < 1 << 40 else (p, h)): c for (p, h), c in reference._chains.items()
    }
    assert keyer._chains == pairs


def test_keyer_grows_its_positions_for_long_requests() -> None:
    for sizes in ((512, 16), (100, 7)):
        keyer, reference = BlockKeyer(*sizes), ReferenceBlockKeyer(*sizes)
        for num_ids, tokens in ((2, 100), (70, 30_000), (300, 140_000), (3, 1_000)):
            hash_ids = list(range(num_ids))
            keys = keyer.keys(hash_ids, tokens)
            assert np.array_equal(keys.array, reference.keys(hash_ids, tokens))
