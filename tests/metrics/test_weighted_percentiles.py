"""Weighted percentiles equal numpy's on the repeated sample; the ITL samples' layout."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.metrics.percentiles import describe, describe_weighted
from infsim.metrics.recorder import Recorder

samples = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=10.0, allow_nan=False, width=64),
        st.integers(min_value=0, max_value=5),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12))
def test_weighted_equals_the_repeated_sample_with_many_ties(seed: int, num_values: int) -> None:
    # Thousands of rows over a few distinct gaps (as a fleet's decode runs give): the sort
    # is not stable, and equal values land in any order; the percentiles do not move.
    rng = np.random.default_rng(seed)
    values = rng.choice(rng.random(num_values), size=5_000)
    counts = rng.integers(0, 40, size=5_000)
    got, want = describe_weighted(values, counts), describe(np.repeat(values, counts))
    for stat in ("p50", "p90", "p95", "p99"):
        assert got[stat] == want[stat], stat


@settings(max_examples=200, deadline=None)
@given(samples)
def test_weighted_equals_the_repeated_sample(pairs: list[tuple[float, int]]) -> None:
    values = np.asarray([v for v, _ in pairs], dtype=np.float64)
    counts = np.asarray([c for _, c in pairs], dtype=np.int64)
    before = values.copy(), counts.copy()
    got = describe_weighted(values, counts)
    want = describe(np.repeat(values, counts))
    assert np.array_equal(values, before[0])
    assert np.array_equal(counts, before[1])
    if counts.sum() == 0:
        assert got == want == dict.fromkeys(got)
        return
    for stat in ("p50", "p90", "p95", "p99"):
        assert got[stat] == want[stat], stat  # the same float as numpy's 'linear'

    assert got["mean"] == math.fsum(values * counts) / counts.sum()  # exactly rounded


def test_the_samples_of_runs_are_their_step_gaps() -> None:
    rec = Recorder()
    rec.itl_s.extend([0.5, 0.25])
    rec.itl_count.extend([2, 0])
    rec.on_decode_run(10.0, [10.1, 10.3, 10.6], 3, 4)
    rec.on_decode_run(20.0, [21.0, 99.0], 1, 2)  # only the run's own steps are kept
    rec.on_decode_run(30.0, np.array([30.5, 31.0, 31.25]), 2, 3)  # a long run's array
    gaps, counts = rec.itl_samples()
    assert np.allclose(gaps, [0.5, 0.25, 0.1, 0.2, 0.3, 1.0, 0.5, 0.5])
    assert counts.tolist() == [2, 0, 4, 4, 4, 2, 3, 3]
    stats = describe_weighted(gaps, counts)
    assert stats == describe_weighted(gaps.copy(), counts.copy())
    rec.release_samples()
    gaps, counts = rec.itl_samples()
    assert gaps.size == counts.size == 0
