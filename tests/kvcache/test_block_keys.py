"""BlockKeys: the keyer's keys as one array, read as a sequence of ints."""

from __future__ import annotations

import numpy as np

from infsim.kvcache.hashing import BlockKeyer, BlockKeys


def test_block_keys_read_as_a_list_of_ints() -> None:
    keys = BlockKeys(np.array([7, 8 << 24, 9], dtype=np.int64))
    assert len(keys) == 3
    assert keys
    assert keys[1] == 8 << 24
    assert type(keys[1]) is int
    assert keys[1:] == [8 << 24, 9]
    assert type(keys[1:]) is list
    assert list(keys) == [7, 8 << 24, 9]
    assert type(next(iter(keys))) is int
    assert keys == [7, 8 << 24, 9]
    assert keys != [7, 8]
    assert keys == BlockKeys(np.array([7, 8 << 24, 9], dtype=np.int64))
    assert not BlockKeys(np.empty(0, dtype=np.int64))


def test_keyer_hands_its_keys_as_an_array() -> None:
    keys = BlockKeyer(hash_block_size_tokens=8, block_size=4).keys([5, 6], 16)
    assert isinstance(keys, BlockKeys)
    assert keys.array.dtype == np.int64
    assert keys.array.tolist() == list(keys)
    assert len(keys) == 4
