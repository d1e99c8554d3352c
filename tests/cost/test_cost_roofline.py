"""Roofline cost model: the fast-forward pricing equals per-step pricing bit for bit."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.core.batch import Batch
from infsim.core.request import RequestState
from infsim.cost import roofline
from infsim.cost.perturb import OpMultipliers
from infsim.cost.roofline import RooflineCostModel
from infsim.scenario.load import validate_scenario
from infsim.scenario.resolve import resolve
from infsim.sim.engine import build_cost_model


def cost_model(
    model: str = "llama-3.1-8b", tp: int = 1, ep: int = 1, **roofline: float
) -> RooflineCostModel:
    raw = {
        "model": model,
        "hardware": {"gpu": "h100-sxm"},
        "deployment": {"tensor_parallel": tp, "expert_parallel": ep},
        "workload": {
            "synthetic": {
                "num_requests": 1,
                "arrival": {"kind": "poisson", "rate_per_s": 1},
                "prompt_tokens": {"kind": "fixed", "value": 10},
                "output_tokens": {"kind": "fixed", "value": 10},
            }
        },
        "cost_model": {"kind": "roofline", **roofline},
    }
    cm = build_cost_model(resolve(validate_scenario(raw, "t"), Path()).replica())
    assert isinstance(cm, RooflineCostModel)
    return cm


MODELS = {
    "dense": cost_model(),
    "dense_tp2": cost_model("llama-3.1-70b", tp=4),
    "moe": cost_model("mixtral-8x7b", tp=2),
    "no_overhead": cost_model(step_overhead_s=0.0, per_seq_overhead_s=0.0),
}


def decode_batch(contexts: list[int]) -> Batch:
    batch = Batch()
    for i, c in enumerate(contexts):
        req = RequestState(
            index=i, request_id=i, arrival_s=0.0, num_prompt_tokens=c, num_output_tokens=10**6
        )
        req.num_output_done = 1  # decoding: num_tokens = c + 1, computed c
        req.num_computed_tokens = c
        batch.add(req, 1)
    return batch


def mixed_batch(rows: list[tuple[int, int]]) -> Batch:
    """One request per (new tokens q, cached context c) row, each computing q on top of c."""
    batch = Batch()
    for i, (q, c) in enumerate(rows):
        req = RequestState(
            index=i, request_id=i, arrival_s=0.0, num_prompt_tokens=q + c, num_output_tokens=1
        )
        req.num_computed_tokens = c
        batch.add(req, q)
    return batch


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    contexts=st.lists(st.integers(0, 200_000), min_size=1, max_size=64),
    num_steps=st.integers(1, 40),
)
def test_decode_run_times_equal_step_times_bitwise(
    name: str, contexts: list[int], num_steps: int
) -> None:
    cm = MODELS[name]
    run = cm.decode_run_times_s(len(contexts), sum(contexts), num_steps)
    assert len(run) == num_steps
    for j in range(num_steps):
        batch = decode_batch([c + j for c in contexts])
        assert batch.num_sampled == batch.num_seqs == len(contexts)
        assert run[j] == cm.step_time_s(batch)  # exact, not approximate


PERTURBED = RooflineCostModel(
    MODELS["dense"].shape,
    MODELS["dense"].params,
    OpMultipliers(dense=1.1, attention=1.37, lm_head=1.21, overhead=0.9),
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from([*sorted(MODELS), "perturbed"]),
    contexts=st.lists(st.integers(0, 200_000), min_size=1, max_size=256),
    num_steps=st.integers(1, 400),
    probes=st.lists(st.integers(0, 399), max_size=4),
)
def test_long_decode_runs_numpy_equals_python_and_steps(
    name: str, contexts: list[int], num_steps: int, probes: list[int]
) -> None:
    """Runs long enough for numpy (`NUMPY_RUN`) price each step to the float the list
    comprehension gives and `step_time_s` gives (probed steps), attention factor ≠ 1 too."""
    cm = PERTURBED if name == "perturbed" else MODELS[name]
    run = cm.decode_run_times_s(len(contexts), sum(contexts), num_steps)
    with patch.object(roofline, "NUMPY_RUN", 1 << 30):
        python = cm.decode_run_times_s(len(contexts), sum(contexts), num_steps)
    assert all(type(t) is float for t in python)
    if num_steps >= roofline.NUMPY_RUN:  # an array (the replica's fast path)
        assert run.dtype == np.float64
        run = run.tolist()
    assert run == python
    for j in [p % num_steps for p in probes] + [num_steps - 1]:
        assert run[j] == cm.step_time_s(decode_batch([c + j for c in contexts]))


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    rows=st.lists(st.tuples(st.integers(1, 4096), st.integers(0, 32_768)), min_size=1, max_size=8),
)
def test_op_times_sum_to_step_time(name: str, rows: list[tuple[int, int]]) -> None:
    cm = MODELS[name]
    batch = mixed_batch(rows)
    ops = cm.op_times_s(batch)
    assert all(v >= 0 for v in ops.values())
    assert sum(ops.values()) == pytest.approx(cm.step_time_s(batch), rel=1e-12)


def test_step_time_monotone_in_context_and_tokens() -> None:
    cm = MODELS["dense"]
    assert cm.step_time_s(decode_batch([100])) < cm.step_time_s(decode_batch([100_000]))
    assert cm.step_time_s(decode_batch([100])) < cm.step_time_s(decode_batch([100] * 64))


def test_overheads_add_exactly() -> None:
    # Two cost models differing only in overheads differ by exactly those overheads.
    base = cost_model(step_overhead_s=0.0, per_seq_overhead_s=0.0)
    over = cost_model(step_overhead_s=0.001, per_seq_overhead_s=0.0001)
    batch = decode_batch([50, 60, 70])
    diff = over.step_time_s(batch) - base.step_time_s(batch)
    assert diff == pytest.approx(0.001 + 3 * 0.0001, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    rows=st.lists(st.tuples(st.integers(1, 4096), st.integers(0, 32_768)), min_size=1, max_size=8),
)
def test_compute_time_is_the_ops_without_overhead_bitwise(
    name: str, rows: list[tuple[int, int]]
) -> None:
    # The proposer's passes (cost/draft.py) are priced by compute_time_s on the hot path
    # and by summing op_times_s otherwise: the same floats, in the same order.
    from infsim.cost.draft import _compute_s

    cm = MODELS[name]
    batch = mixed_batch(rows)
    assert cm.compute_time_s(batch) == _compute_s(cm, batch)  # exact


def test_the_dense_memo_is_bounded_and_changes_no_price(monkeypatch) -> None:
    from infsim.cost import roofline

    shapes = [[(q, c)] for q in (1, 7, 64, 512, 2048) for c in (0, 100, 4000)]
    shapes += [[(1, c) for c in range(n)] for n in (2, 9, 33)]
    unbounded = cost_model()
    want = [unbounded.step_time_s(mixed_batch(rows)) for rows in shapes * 2]
    monkeypatch.setattr(roofline, "DENSE_CACHE_ENTRIES", 4)
    bounded = cost_model()
    got = [bounded.step_time_s(mixed_batch(rows)) for rows in shapes * 2]
    assert got == want
    assert len(bounded._dense_cache) <= 4
    assert len(unbounded._dense_cache) == 8  # distinct (tokens, sampled) shapes: it was full


FRESH = {
    "dense": cost_model,
    "dense_tp2": lambda: cost_model("llama-3.1-70b", tp=4),
    "moe": lambda: cost_model("mixtral-8x7b", tp=2),
    "moe_ep": lambda: cost_model("mixtral-8x7b", tp=4, ep=2),
    "perturbed": lambda: RooflineCostModel(
        PERTURBED.shape, PERTURBED.params, PERTURBED.multipliers
    ),
}
TOKENS = st.integers(0, 9000) | st.integers(0, 12)  # some neighbours, so memos are shared
ROWS = st.integers(0, 300) | st.integers(0, 6)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(sorted(FRESH)),
    shapes=st.lists(st.tuples(TOKENS, ROWS), max_size=30),
    entries=st.sampled_from([1, 3, 1 << 16]),
)
def test_the_dense_memo_split_by_tokens_and_rows_is_the_plain_sum_bitwise(
    name: str, shapes: list[tuple[int, int]], entries: int
) -> None:
    """A dense-memo miss priced from the tokens' ops and the LM head memoised apart (in
    any order of shapes, memos full or not) is `sum` of `_dense_ops` exactly."""
    with patch.object(roofline, "DENSE_CACHE_ENTRIES", entries):  # fresh memos
        cm = FRESH[name]()
        for t, n in shapes * 2:
            assert cm._dense_s(t, n) == sum(cm._dense_ops(t, n).values())
