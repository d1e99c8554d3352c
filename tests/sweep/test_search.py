"""Pure search policies: capacity bisection against monotone synthetic oracles, the
Pareto front against brute force, SLO targets on summary rows."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infsim.sweep.search import SLOTarget, bisect_capacity, pareto_front


@given(capacity=st.floats(0.01, 500.0), rel_tol=st.sampled_from([0.001, 0.01, 0.05]))
def test_bisection_brackets_the_capacity_within_the_tolerance(capacity: float, rel_tol: float):
    result = bisect_capacity(lambda x: x <= capacity, rel_tol=rel_tol)
    assert result.scale == result.lower <= capacity < result.upper
    assert result.upper - result.lower <= rel_tol * result.upper
    assert not result.capped
    assert all(ok == (x <= capacity) for x, ok in result.probes)
    # the answer is the best probe that met it, and the probe count is logarithmic
    assert result.scale == max(x for x, ok in result.probes if ok)
    assert len(result.probes) <= 2 * math.log2(1024) + math.log2(1 / rel_tol) + 2


def test_bisection_reports_capped_and_none():
    capped = bisect_capacity(lambda x: True, max_scale=64)
    assert capped.capped
    assert capped.scale == 64
    assert capped.upper is None
    none = bisect_capacity(lambda x: False, min_scale=1 / 8)
    assert none.scale == 0
    assert none.upper == pytest.approx(1 / 8)


def test_bisection_probe_sequence_is_exact():
    result = bisect_capacity(lambda x: x <= 3.3, rel_tol=0.1)
    assert [x for x, _ in result.probes] == [1, 2, 4, 3, 3.5, 3.25]
    assert (result.lower, result.upper) == (3.25, 3.5)


def _dominated(i: int, costs, lats) -> bool:
    return any(
        costs[j] <= costs[i] and lats[j] <= lats[i] and (costs[j], lats[j]) != (costs[i], lats[i])
        for j in range(len(costs))
    )


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_pareto_front_is_the_non_dominated_set(points):
    costs = [float(c) for c, _ in points]
    lats = [float(lat) for _, lat in points]
    front = pareto_front(costs, lats)
    expected = {(costs[i], lats[i]) for i in range(len(points)) if not _dominated(i, costs, lats)}
    assert {(costs[i], lats[i]) for i in front} == expected
    assert len(front) == len(expected)  # of identical points only one
    assert [costs[i] for i in front] == sorted(costs[i] for i in front)


def test_pareto_front_skips_missing_values():
    assert pareto_front([1.0, None, 2.0, float("nan")], [5.0, 1.0, 4.0, 0.1]) == [0, 2]


def test_slo_target_violations_and_met():
    target = SLOTarget(ttft_p99_s=0.5, tpot_p99_s=0.05, min_attainment=0.9)
    row = {"status": "ok", "latency_s.ttft.p99": 0.25, "latency_s.tpot.p99": 0.06,
           "slo.attainment": 0.99}  # fmt: skip
    assert target.violations(row) == pytest.approx([-0.5, 0.2, -0.1])
    assert not target.met(row)
    assert target.met({**row, "latency_s.tpot.p99": 0.05})
    assert not target.met({**row, "latency_s.tpot.p99": 0.05, "status": "failed"})
    assert target.violations({"status": "ok"}) == [1e9, 1e9, 1e9]
