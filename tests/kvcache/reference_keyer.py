"""The block keyer as first written (one numpy element write per trace block, the
positions computed per request): the oracle of tests/kvcache/test_keyer_reference.py."""

from __future__ import annotations

import numpy as np

_POSITION_BITS = 24


class ReferenceBlockKeyer:
    def __init__(self, hash_block_size_tokens: int, block_size: int) -> None:
        self.hash_block_size_tokens = hash_block_size_tokens
        self.block_size = block_size
        self._chains: dict[tuple[int, int], int] = {}

    def keys(self, hash_ids: list[int], num_tokens: int) -> np.ndarray | None:
        if not hash_ids:
            return None
        chains = self._chains
        chain_ids = np.empty(len(hash_ids), dtype=np.int64)
        parent = -1
        for t, hid in enumerate(hash_ids):
            parent = chains.setdefault((parent, hid), len(chains))
            chain_ids[t] = parent
        covered = min(len(hash_ids) * self.hash_block_size_tokens, num_tokens)
        num_blocks = covered // self.block_size
        if num_blocks == 0:
            return None
        j = np.arange(num_blocks, dtype=np.int64)
        last = ((j + 1) * self.block_size - 1) // self.hash_block_size_tokens
        return (chain_ids[last] << _POSITION_BITS) | j
