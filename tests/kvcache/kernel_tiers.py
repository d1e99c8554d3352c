"""Pin the prefix pool's kernels for a test: numba's or the plain-Python copy, whatever
the process ran before (the pool switches once per process, `prefix_cache._promote`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from infsim.kvcache import prefix_cache as pc

_plain: list[ModuleType] = []


@contextmanager
def kernel_tier(compiled: bool) -> Iterator[None]:
    """Pools driven inside call the compiled kernels (`compiled`: numba's JIT, or the
    ahead-of-time ones in the compiled build) or the plain ones; no promotion happens
    inside (the process counts as settled)."""
    if not _plain:
        _plain.append(pc._load_plain())
    saved = pc._active, pc._settled
    pc._active = (pc.compiled_kernels() or _plain[0]) if compiled else _plain[0]
    pc._settled = True
    try:
        yield
    finally:
        pc._active, pc._settled = saved
