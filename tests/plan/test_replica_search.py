"""The pure replica search: exact answers and probe counts against fake oracles."""

from __future__ import annotations

import math

import pytest

from infsim.plan.search import (
    FAILED,
    FOUND,
    LATENCY_BOUND,
    MAX_REPLICAS,
    Probe,
    min_replicas,
    next_probe,
)
from infsim.sweep.search import bisect_capacity


def threshold_oracle(needed: int, calls: list[int]):
    """Meets iff replicas ≥ needed; the violation halves with each doubling below it."""

    def probe(r: int) -> Probe:
        calls.append(r)
        return Probe(r >= needed, needed / r - 1.0)

    return probe


def test_meets_iff_three_or_more_gives_three_in_four_probes():
    calls: list[int] = []
    result = min_replicas(threshold_oracle(3, calls))
    assert (result.replicas, result.stop) == (3, FOUND)
    assert calls == [1, 2, 4, 3]  # gallop 1, 2, 4, then bisect (2, 4) at 3
    assert [r for r, _ in result.probes] == calls


@pytest.mark.parametrize("needed", [1, 2, 3, 5, 7, 8, 9, 33, 64])
def test_any_threshold_is_found_within_the_probe_bound(needed: int):
    calls: list[int] = []
    result = min_replicas(threshold_oracle(needed, calls), max_replicas=64)
    assert result.replicas == needed
    assert len(calls) <= 2 * math.ceil(math.log2(needed)) + 1 if needed > 1 else len(calls) == 1
    assert len(set(calls)) == len(calls)  # never the same count twice


def test_a_start_above_the_answer_bisects_down():
    calls: list[int] = []
    assert min_replicas(threshold_oracle(3, calls), start=8).replicas == 3
    assert calls == [8, 4, 2, 3]


def test_gives_up_at_max_replicas():
    calls: list[int] = []
    result = min_replicas(threshold_oracle(100, calls), max_replicas=10)
    assert (result.replicas, result.stop) == (None, MAX_REPLICAS)
    assert calls == [1, 2, 4, 8, 10]


def test_stops_early_when_more_replicas_no_longer_help():
    # TPOT floor: the violation falls 0.8 → 0.3 → 0.22 → 0.21; the last doubling gains < 10 %
    floor = {1: 0.8, 2: 0.3, 4: 0.22, 8: 0.21, 16: 0.2}
    calls: list[int] = []

    def probe(r: int) -> Probe:
        calls.append(r)
        return Probe(False, floor[r])

    result = min_replicas(probe, max_replicas=64)
    assert (result.replicas, result.stop) == (None, LATENCY_BOUND)
    assert calls == [1, 2, 4, 8]


def test_a_failed_point_ends_the_search():
    result = min_replicas(lambda r: Probe(False, math.inf, "boom") if r == 2 else Probe(False, 5.0))
    assert (result.replicas, result.stop) == (None, FAILED)
    assert [r for r, _ in result.probes] == [1, 2]


def test_next_probe_replays_a_search_one_probe_at_a_time():
    known: dict[int, Probe] = {}
    asked = []
    while True:
        done, x, result = next_probe(lambda oracle: min_replicas(oracle), known)
        if done:
            break
        asked.append(x)
        known[x] = Probe(x >= 5, 5 / x - 1)
    assert result.replicas == 5
    assert asked == [1, 2, 4, 8, 6, 5]


def test_next_probe_drives_the_capacity_bisection_too():
    known = {1.0: True}
    while True:
        done, x, result = next_probe(
            lambda oracle: bisect_capacity(oracle, start=1.0, rel_tol=0.05, max_scale=8), known
        )
        if done:
            break
        known[x] = x <= 2.7
    assert result.lower <= 2.7 < result.upper
    assert result.upper - result.lower <= 0.05 * result.upper
