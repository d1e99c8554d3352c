"""The keyer (cached positions and trace-block indices, a repeat when a trace block is a
whole number of engine blocks) gives the keys of the straightforward keyer, call after
call on one intern table; and the pool's `KeyLayout` of any keys is what a plain pass
over them finds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.kvcache.hashing import BlockKeyer, BlockKeys
from infsim.kvcache.prefix_cache import KeyLayout, _layout
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


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.integers(0, 2**40), min_size=1, max_size=80), as_array=st.booleans())
def test_key_layout_is_a_plain_pass(keys: list[int], as_array: bool) -> None:
    source = BlockKeys(np.array(keys, dtype=np.int64)) if as_array else keys
    layout = _layout(source)
    assert isinstance(layout, KeyLayout)
    assert layout.size == len(keys)
    assert layout.offsets.tolist() == [k & 31 for k in keys]
    bounds = [0] + [i for i in range(1, len(keys)) if keys[i] >> 5 != keys[i - 1] >> 5]
    ends = [*bounds[1:], len(keys)]
    assert layout.bounds == [*bounds, len(keys)]
    assert layout.pages == [keys[b] >> 5 for b in bounds]
    assert layout.lengths == [end - b for b, end in zip(bounds, ends, strict=True)]
    assert layout.distinct == (len(set(keys)) == len(keys))
    assert layout.distinct_pages == (len(set(layout.pages)) == len(layout.pages))
    if as_array:
        assert _layout(source) is layout  # made once per BlockKeys


LAYOUT_FIELDS = ("size", "bounds", "pages", "lengths", "distinct", "distinct_pages")


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.sampled_from([(512, 16), (1024, 16), (512, 128), (64, 16), (8, 4), (10, 4), (96, 4)]),
    requests=calls,
)
def test_keyer_layout_is_the_layout_of_its_keys(
    sizes: tuple[int, int], requests: list[tuple[list[int], int]]
) -> None:
    """The layout made from the keyer's chains (no pass over the keys) is the one a pass
    over the keys finds."""
    keyer = BlockKeyer(*sizes)
    for hash_ids, tokens in requests:
        keys = keyer.keys(hash_ids, tokens)
        if keys is None:
            continue
        fast, plain = _layout(keys), KeyLayout(keys.array)
        for name in LAYOUT_FIELDS:
            assert getattr(fast, name) == getattr(plain, name), name
        assert np.array_equal(fast.offsets, plain.offsets)


def test_keyer_grows_its_positions_for_long_requests() -> None:
    for sizes in ((512, 16), (100, 7)):
        keyer, reference = BlockKeyer(*sizes), ReferenceBlockKeyer(*sizes)
        for num_ids, tokens in ((2, 100), (70, 30_000), (300, 140_000), (3, 1_000)):
            hash_ids = list(range(num_ids))
            keys = keyer.keys(hash_ids, tokens)
            assert np.array_equal(keys.array, reference.keys(hash_ids, tokens))
