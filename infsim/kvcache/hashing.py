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
from types import ModuleType

import numpy as np

_POSITION_BITS = 24
_ID_BITS = 40  # a (parent chain, hash id) pair is interned as one int when the id fits
MIN_CHAIN_SLOTS = 1024  # the kernels' intern table at first (a power of two)


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
    """Turns per-request trace hash ids into engine-block keys, sharing one intern table.

    Two ways, the same keys: a dict interns the ids in Python (the default), or, given
    compiled `kernels` (`prefix_cache.keying_kernels()`: a run long enough for the prefix
    pool to be on numba's kernels), one compiled call per request interns them in an
    array table and writes its keys (`pool_kernels.chain_keys`: ~5 µs under numba's JIT
    rather than ~9-10 for a Mooncake request's 24 ids, mostly memory latency). Both number
    chains in order of first sight."""

    def __init__(
        self, hash_block_size_tokens: int, block_size: int, kernels: ModuleType | None = None
    ) -> None:
        self.hash_block_size_tokens = hash_block_size_tokens
        self.block_size = block_size
        # (parent, hash id) -> chain; the pair as one int (parent << 40 | id) when
        # 0 <= id < 2**40 (cheaper to hash than a tuple), else as a tuple.
        self._chains: dict[int | tuple[int, int], int] = {}
        # Engine block j's trace block t(j) and its position j, for the first blocks
        # (grown on demand): a request's keys are then one gather (or repeat) and one or.
        self._last = np.empty(0, dtype=np.intp)
        self._positions = np.empty(0, dtype=np.int64)
        per_trace_block, rest = divmod(hash_block_size_tokens, block_size)
        self._per_trace_block = per_trace_block if not rest else 0  # t(j) = j // this
        self._kernels = kernels
        self._table = np.empty(0, dtype=np.int64)  # the kernels' intern table (first use)
        self._num_chains = np.zeros(1, dtype=np.int64)
        self._room = 0  # chains it takes before its load passes 1/2 (a lower bound)

    @property
    def num_chains(self) -> int:
        """Chains interned so far."""
        return int(self._num_chains[0]) if self._kernels is not None else len(self._chains)

    def keys(self, hash_ids: Sequence[int] | np.ndarray, num_tokens: int) -> BlockKeys | None:
        """Keys of the engine blocks fully described by `hash_ids` (ints, or an int64
        array) within `num_tokens`."""
        if not len(hash_ids):
            return None
        if self._kernels is not None:
            return self._compiled_keys(hash_ids, num_tokens)
        if isinstance(hash_ids, np.ndarray):
            hash_ids = hash_ids.tolist()
        chains = self._chains
        chain_ids = []
        parent = -1
        if min(hash_ids) >= 0 and max(hash_ids) >> _ID_BITS == 0:
            for hid in hash_ids:  # every id is interned, also past num_tokens
                parent = chains.setdefault(parent << _ID_BITS | hid, len(chains))
                chain_ids.append(parent)
        else:
            for hid in hash_ids:
                pair = parent << _ID_BITS | hid if 0 <= hid < 1 << _ID_BITS else (parent, hid)
                parent = chains.setdefault(pair, len(chains))
                chain_ids.append(parent)
        covered = min(len(hash_ids) * self.hash_block_size_tokens, num_tokens)
        num_blocks = covered // self.block_size
        if num_blocks == 0:
            return None
        if len(self._positions) < num_blocks:
            size = max(num_blocks, 2 * len(self._positions), 1024)
            self._positions = j = np.arange(size, dtype=np.int64)
            self._last = ((j + 1) * self.block_size - 1) // self.hash_block_size_tokens
        chain = np.array(chain_ids, dtype=np.int64) << _POSITION_BITS
        per = self._per_trace_block
        if per:  # t(j) = j // blocks per trace block
            chain = chain.repeat(per)[:num_blocks]
            return BlockKeys(chain | self._positions[:num_blocks])
        chain = chain[self._last[:num_blocks]]
        return BlockKeys(chain | self._positions[:num_blocks])

    def _compiled_keys(
        self, hash_ids: Sequence[int] | np.ndarray, num_tokens: int
    ) -> BlockKeys | None:
        ids = hash_ids if type(hash_ids) is np.ndarray else np.array(hash_ids, np.int64)
        num_ids = len(ids)
        self._room -= num_ids  # new chains this call adds at most
        if self._room < 0:
            self._grow(num_ids)
        num_blocks = min(num_ids * self.hash_block_size_tokens, num_tokens) // self.block_size
        out = np.empty(num_blocks, dtype=np.int64)
        self._kernels.chain_keys(self._table, self._num_chains, ids, num_blocks,
                                 self.block_size, self.hash_block_size_tokens,
                                 _POSITION_BITS, out)  # fmt: skip
        return BlockKeys(out) if num_blocks else None

    def _grow(self, num_ids: int) -> None:
        """Room for `num_ids` more chains at a load of at most 1/2 (a larger table, the
        chains so far rehashed into it when they would not fit)."""
        old = self._table
        needed = 2 * (int(self._num_chains[0]) + num_ids)
        capacity = max(len(old) // 3, MIN_CHAIN_SLOTS)
        while capacity < needed:
            capacity *= 2
        if capacity != len(old) // 3:
            self._table = np.full(3 * capacity, -1, dtype=np.int64)
            self._kernels.rehash_chains(old, self._table)
        self._room = capacity // 2 - int(self._num_chains[0]) - num_ids
