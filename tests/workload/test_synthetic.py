"""Synthetic generators: determinism, rate/CV oracles, session prefix structure."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.workload import synthetic as syn


def make(seed: int, **kw):
    spec = syn.ChatSessions(
        num_sessions=kw.get("num_sessions", 40),
        session_arrivals=syn.PoissonArrivals(1.0),
        turns=syn.UniformLengths(1, 6),
        user_tokens=syn.UniformLengths(1, 200),
        output_tokens=syn.UniformLengths(1, 300),
        think_time=syn.ExponentialThinkTime(10.0),
        system_prompt_tokens=kw.get("system_prompt_tokens", 100),
        hash_block_size_tokens=16,
        max_context_tokens=kw.get("max_context_tokens"),
    )
    return syn.generate_sessions(spec, np.random.default_rng(seed))


def test_same_seed_same_trace():
    def gen(seed):
        return syn.generate_requests(
            500, syn.GammaArrivals(3.0, 2.0), syn.LognormalLengths.from_mean(800, 0.9, 1, 4096),
            syn.EmpiricalLengths((10, 20, 30)), np.random.default_rng(seed),
        )  # fmt: skip

    assert gen(1).table.equals(gen(1).table)
    assert not gen(1).table.equals(gen(2).table)
    assert make(3).table.equals(make(3).table)


def test_poisson_rate_and_gamma_cv():
    rng = np.random.default_rng(0)
    num = 200_000
    poisson_s = syn.arrival_times_s(syn.PoissonArrivals(5.0), num, rng)
    assert num / poisson_s[-1] == pytest.approx(5.0, rel=0.01)
    gaps = np.diff(poisson_s)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)
    gamma_gaps = syn.GammaArrivals(5.0, 3.0).gaps_s(num, rng)
    assert 1 / gamma_gaps.mean() == pytest.approx(5.0, rel=0.03)
    assert gamma_gaps.std() / gamma_gaps.mean() == pytest.approx(3.0, rel=0.05)


def test_gamma_cv1_is_poisson_bit_for_bit():
    a = syn.GammaArrivals(2.0, 1.0).gaps_s(100, np.random.default_rng(9))
    b = syn.PoissonArrivals(2.0).gaps_s(100, np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)


def test_length_distributions():
    rng = np.random.default_rng(0)
    lognormal = syn.LognormalLengths.from_mean(1000, 0.5, 1, 10**9).sample(200_000, rng)
    assert lognormal.mean() == pytest.approx(1000, rel=0.01)
    median = syn.LognormalLengths.from_median(300, 1.0, 50, 2000).sample(100_000, rng)
    assert np.median(median) == pytest.approx(300, rel=0.03)
    assert median.min() >= 50
    assert median.max() <= 2000
    uniform = syn.UniformLengths(3, 5).sample(1000, rng)
    assert set(uniform.tolist()) == {3, 4, 5}
    assert set(syn.EmpiricalLengths((7, 9)).sample(100, rng).tolist()) <= {7, 9}


def test_sessions_share_system_prompt_and_history():
    trace = make(5, system_prompt_tokens=100)  # 100 // 16 = 6 shared blocks
    rows = trace.table.to_pylist()
    by_session: dict[int, list[dict]] = {}
    for row in rows:
        by_session.setdefault(row["session_id"], []).append(row)
        assert row["prefix_hash_ids"][:6] == list(range(6))
        assert len(row["prefix_hash_ids"]) == (row["num_prompt_tokens"]
                                               + row["num_output_tokens"]) // 16  # fmt: skip
    owners: dict[int, int] = {}
    for session, turns in by_session.items():
        for prev, turn in itertools.pairwise(turns):
            # prompt = previous prompt + previous answer + new user tokens (>= 1)
            assert turn["num_prompt_tokens"] > prev["num_prompt_tokens"] + prev["num_output_tokens"]
            ids = prev["prefix_hash_ids"]
            assert turn["prefix_hash_ids"][: len(ids)] == ids
            assert turn["arrival_s"] >= prev["arrival_s"]
        for block in turns[-1]["prefix_hash_ids"][6:]:
            assert owners.setdefault(block, session) == session  # never shared across sessions


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), limit=st.integers(300, 3000))
def test_max_context_tokens(seed, limit):
    trace = make(seed, num_sessions=10, max_context_tokens=limit)
    total = trace.num_prompt_tokens + trace.num_output_tokens
    first_turn = np.unique(trace.session_ids(), return_index=True)[1]
    later = np.ones(trace.num_requests, bool)
    later[first_turn] = False
    assert np.all(total[later] <= limit)
