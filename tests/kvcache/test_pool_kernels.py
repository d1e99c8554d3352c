"""The pool's compiled kernels: the page table against a dict (collisions, wrap-around,
backward-shift deletion), and the plain-Python fallback against the per-block oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.kvcache import pool_kernels as k

REPO = Path(__file__).resolve().parents[2]

page_ops = st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "find"]), st.integers(0, 40)),
    min_size=1,
    max_size=200,
)


def _table_matches_dict(ops: list[tuple[str, int]], capacity: int, compiled: bool) -> None:
    functions = (k._row_of, k._page_insert, k._page_delete)
    if not compiled:  # the plain-Python source of each (numba keeps it as py_func)
        functions = tuple(getattr(f, "py_func", f) for f in functions)
    find, insert, delete = functions
    pages = np.full(2 * capacity, k.EMPTY, dtype=np.int64)
    expected: dict[int, int] = {}
    for step, (op, page) in enumerate(ops):
        if op == "insert" and page not in expected and len(expected) < capacity // 2:
            insert(pages, page, step)
            expected[page] = step
        elif op == "delete" and page in expected:
            delete(pages, page)
            del expected[page]
        assert find(pages, page) == expected.get(page, -1)
        live = pages[0::2] >= 0
        table = dict(zip(pages[0::2][live].tolist(), pages[1::2][live].tolist(), strict=True))
        assert table == expected


@settings(max_examples=300, deadline=None)
@given(ops=page_ops, capacity=st.sampled_from([4, 8, 16]), compiled=st.booleans())
def test_page_table_is_a_dict(ops: list[tuple[str, int]], capacity: int, compiled: bool) -> None:
    """41 pages in 4-16 slots: long probe runs that wrap around the end, and deletions
    that must shift later entries back (or leave them) for lookups to stay right."""
    _table_matches_dict(ops, capacity, compiled)


def test_page_table_deletion_shifts_a_wrapped_run() -> None:
    """Pages whose home is the last slot wrap to the first ones; deleting the first of
    them must pull the wrapped ones back across the end of the table."""
    mask = 7
    same_home = [p for p in range(2000) if k._home(p, mask) == mask][:3]
    pages = np.full(16, k.EMPTY, dtype=np.int64)
    for row, page in enumerate(same_home):
        k._page_insert(pages, page, row)
    assert pages[2 * mask] == same_home[0]
    assert pages[0] == same_home[1]
    k._page_delete(pages, same_home[0])
    assert [k._row_of(pages, p) for p in same_home] == [-1, 1, 2]
    assert pages[2 * mask] == same_home[1]


def test_kernels_are_compiled() -> None:
    """With numba installed (a dependency) the pool does not run its loops in Python."""
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        pytest.skip("NUMBA_DISABLE_JIT=1: the plain-Python path is under test")
    assert k.JIT


FALLBACK = """
import logging, random
logging.basicConfig()
from infsim.kvcache import pool_kernels, prefix_cache
assert not pool_kernels.JIT
prefix_cache.PROMOTE_AFTER_BLOCK_OPS = 300  # promoted (to the same plain code) mid-run
from tests.properties.test_prop_prefix_pool import NUM_DOCS, drive, random_ops
from infsim.kvcache.hashing import BlockKeyer
for seed in range(6):
    rng = random.Random(seed)
    specs = [(rng.randint(4, 200), rng.randint(1, 16), rng.randrange(NUM_DOCS),
              rng.randrange(NUM_DOCS), rng.randint(0, 6),
              rng.choice(["prompt", "all", "none"]), 1) for _ in range(6)]
    ops = random_ops(rng, len(specs), 150, admit=200, step=60, run=100)
    keyer = BlockKeyer(32 * 4, 4) if seed % 2 else None
    drive(rng.randint(8, 120), specs, ops, keyer)
assert prefix_cache._settled and prefix_cache.compiled_kernels() is None
print("fallback ok")
"""


def test_plain_python_fallback_matches_the_oracle() -> None:
    """NUMBA_DISABLE_JIT=1 runs the kernels as plain Python (what a platform without
    numba gets): the pool still matches the per-block oracle, and says it is slow when
    a run is long enough to want numba's."""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", FALLBACK], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fallback ok" in done.stdout
    assert "runs its per-block loops in plain Python" in done.stderr


def test_promotion_mid_run_keeps_the_pool_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh process runs the plain kernels, then switches to numba's after
    PROMOTE_AFTER_BLOCK_OPS block operations, in the middle of a workload: the pool
    matches the oracle across the switch, and every pool of the process switches."""
    import random

    from infsim.kvcache import prefix_cache as pc
    from infsim.kvcache.hashing import BlockKeyer
    from tests.properties.test_prop_prefix_pool import NUM_DOCS, drive, random_ops

    monkeypatch.setattr(pc, "_active", None)
    monkeypatch.setattr(pc, "_settled", False)
    monkeypatch.setattr(pc, "_block_ops", 0)
    monkeypatch.setattr(pc, "PROMOTE_AFTER_BLOCK_OPS", 2_000)
    rng = random.Random(7)
    specs = [(rng.randint(40, 400), rng.randint(1, 16), rng.randrange(NUM_DOCS),
              rng.randrange(NUM_DOCS), rng.randint(0, 6), "all", 1) for _ in range(8)]  # fmt: skip
    ops = random_ops(rng, len(specs), 300, admit=400, step=60, run=100)
    drive(300, specs[:4], ops[:20], BlockKeyer(32 * 4, 4))  # a small run: plain kernels
    assert pc._active is not None
    assert pc._active is not pc.compiled_kernels()
    assert not pc._settled
    drive(300, specs, ops, BlockKeyer(32 * 4, 4))  # crosses the threshold
    assert pc._settled
    assert pc._active is pc.compiled_kernels()


def test_a_run_known_to_be_long_starts_on_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    from infsim.kvcache import prefix_cache as pc

    monkeypatch.setattr(pc, "_active", None)
    monkeypatch.setattr(pc, "_settled", False)
    monkeypatch.setattr(pc, "_block_ops", 0)
    pc.prepare_kernels(pc.PROMOTE_AFTER_BLOCK_OPS // 2)
    assert not pc._settled
    pc.prepare_kernels(pc.PROMOTE_AFTER_BLOCK_OPS)
    assert pc._active is pc.compiled_kernels()


def test_the_pool_passes_its_kernels_contiguous_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ahead-of-time kernels are typed for C-contiguous arrays (`AOT_SIGNATURES`,
    `[::1]`: no stride per index); numba's JIT and the plain copy take any layout, so a
    strided view passed by the pool would only fail in the compiled build. Every array
    the pool hands to a kernel, over a churning workload, is C-contiguous."""
    import random
    from types import SimpleNamespace

    from infsim.kvcache import prefix_cache as pc
    from infsim.kvcache.hashing import BlockKeyer
    from tests.properties.test_prop_prefix_pool import NUM_DOCS, drive, random_ops

    kernels = pc.compiled_kernels() or pc._load_plain()
    calls: dict[str, int] = {}

    def spy(name: str):
        function = getattr(kernels, name)

        def checked(*args):
            for i, arg in enumerate(args):
                if isinstance(arg, np.ndarray):
                    assert arg.flags.c_contiguous, f"{name}: argument {i} is strided"
            calls[name] = calls.get(name, 0) + 1
            return function(*args)

        return checked

    monkeypatch.setattr(pc, "_active", SimpleNamespace(**{n: spy(n) for n in k.AOT_SIGNATURES}))
    monkeypatch.setattr(pc, "_settled", True)
    rng = random.Random(11)
    specs = [(rng.randint(40, 400), rng.randint(1, 16), rng.randrange(NUM_DOCS),
              rng.randrange(NUM_DOCS), rng.randint(0, 6), "all", 1) for _ in range(8)]  # fmt: skip
    drive(300, specs, random_ops(rng, len(specs), 300, admit=400, step=60, run=100),
          BlockKeyer(32 * 4, 4))  # fmt: skip
    assert {"match", "allocate", "free", "free_for_run"} <= set(calls), calls


NO_CACHE_LOCATION = """
from numba.core import caching
caching.CacheImpl._locator_classes = []  # as if no folder were writable (numba internals)
from infsim.kvcache import pool_kernels, prefix_cache
assert pool_kernels.JIT
prefix_cache._active, prefix_cache._settled = pool_kernels, True  # the JIT kernels
from tests.properties.test_prop_prefix_pool import drive
drive(8, [(20, 4, 0, 1, 2, "all", 1), (24, 4, 0, 0, 2, "all", 1)],
      [("admit", 0, 20), ("admit", 1, 24), ("step", 0, 4, 0), ("free", 0), ("probe", 1)])
print("uncached ok")
"""


def test_kernels_compile_where_no_cache_folder_is_writable() -> None:
    """A read-only install with a read-only home: numba cannot cache, and refuses
    `cache=True` outright; the kernels are then compiled in the process instead."""
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        pytest.skip("NUMBA_DISABLE_JIT=1: nothing is compiled")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", NO_CACHE_LOCATION], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "uncached ok" in done.stdout
