"""Engine-block prefix keys from a trace's hash ids.

Traces describe prefixes with ids of consecutive `hash_block_size`-token blocks (Mooncake:
512 tokens; equal leading ids ⇒ shared prefix). The engine caches `block_size`-token
blocks (vLLM: 16 on GPU, 128 on the CPU backend). Engine block j (tokens
[j*bs, (j+1)*bs)) is identified by the chain of trace blocks up to the last one that
overlaps it, t(j) = ((j+1)*bs - 1) // hbs, and by its position j:

    chain(t)  = intern(chain(t-1), hash_id[t])     # hash chain, as vLLM's block hashes
    key(j)    = chain(t(j)) << 24 | j

Two requests share key(j) only if their trace prefixes agree up to block t(j), which
covers engine block j, so equal keys mean equal tokens. Only engine blocks fully inside
the span the hash ids describe get keys. Interning ids are per simulation (no global
counters), so keys are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

_POSITION_BITS = 24


class BlockKeys(Sequence[int]):
    """A request's block keys: a read-only sequence of ints (what routers and tests read)
    kept as one int64 array (`array`), so the prefix-caching pool slices keys without
    converting Python ints, and a long prompt's keys take 8 bytes each rather than a list
    of Python ints (~40 bytes each)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index):  # int -> int, slice -> list of ints
        if isinstance(index, slice):
            return self.array[index].tolist()
        return int(self.array[index])

    def __iter__(self) -> Iterator[int]:
        return iter(self.array.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BlockKeys):
            return np.array_equal(self.array, other.array)
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-by-reference, as a list

    def __repr__(self) -> str:
        return f"BlockKeys({self.array.tolist()!r})"


class BlockKeyer:
    """Turns per-request trace hash ids into engine-block keys, sharing one intern table."""

    def __init__(self, hash_block_size_tokens: int, block_size: int) -> None:
        self.hash_block_size_tokens = hash_block_size_tokens
        self.block_size = block_size
        self._chains: dict[tuple[int, int], int] = {}

    def keys(self, hash_ids: list[int], num_tokens: int) -> BlockKeys | None:
        """Keys of the engine blocks fully described by `hash_ids` within `num_tokens`."""
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
        return BlockKeys((chain_ids[last] << _POSITION_BITS) | j)
