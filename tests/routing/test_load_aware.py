"""Routers as pure policies on a fake cluster view."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from infsim.core.request import RequestState
from infsim.routing.load_aware import PowerOfTwo, PrefixAware, RandomRouter, build_router
from infsim.scenario.schema import RouterSpec


@dataclass
class FakeView:
    loads: list[int]
    cached: list[list[int]] = field(default_factory=list)  # keys each replica holds

    @property
    def num_replicas(self) -> int:
        return len(self.loads)

    def outstanding_requests(self, replica: int) -> int:
        return self.loads[replica]

    def request_load(self, replica: int) -> float:
        return self.loads[replica] / 64  # max_num_seqs 64 everywhere

    def outstanding_tokens(self, replica: int) -> int:
        return 100 * self.loads[replica]

    def kv_usage(self, replica: int) -> float:
        return 0.0

    def cached_prefix_blocks(self, replica: int, block_keys: list[int]) -> int:
        held = set(self.cached[replica]) if self.cached else set()
        n = 0
        for key in block_keys:
            if key not in held:
                break
            n += 1
        return n


def request(keys: list[int] | None = None) -> RequestState:
    return RequestState(index=0, request_id=0, arrival_s=0.0, num_prompt_tokens=64,
                        num_output_tokens=4, block_keys=keys)  # fmt: skip


def test_power_of_two_picks_the_less_loaded_of_two_samples() -> None:
    view = FakeView([5, 0, 9, 3])
    rng = np.random.default_rng(7)
    router = PowerOfTwo(np.random.default_rng(7))
    for _ in range(200):
        a = int(rng.integers(4))
        b = int(rng.integers(3))
        b += b >= a
        expected = a if view.loads[a] < view.loads[b] else b
        assert router.route(request(), view, 0.0) == expected
    # Never the most loaded replica: it loses every pairing.
    assert 2 not in {router.route(request(), view, 0.0) for _ in range(500)}


def test_power_of_two_tie_goes_to_lower_index_and_single_replica() -> None:
    router = PowerOfTwo(np.random.default_rng(0))
    assert {router.route(request(), FakeView([1, 1]), 0.0) for _ in range(50)} == {0}
    assert router.route(request(), FakeView([3]), 0.0) == 0


def test_random_router_is_seeded() -> None:
    r1, r2 = RandomRouter(np.random.default_rng(3)), RandomRouter(np.random.default_rng(3))
    seq1 = [r1.route(request(), FakeView([0] * 5), 0.0) for _ in range(20)]
    seq2 = [r2.route(request(), FakeView([0] * 5), 0.0) for _ in range(20)]
    assert seq1 == seq2
    assert len(set(seq1)) > 1


KEYS = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]


def test_prefix_aware_picks_longest_cached_prefix() -> None:
    view = FakeView([3, 4, 2], cached=[KEYS[:2], KEYS[:8], []])
    assert PrefixAware().route(request(KEYS), view, 0.0) == 1


def test_prefix_aware_ties_on_match_go_to_less_loaded() -> None:
    view = FakeView([4, 2, 2], cached=[KEYS[:5], KEYS[:5], KEYS[:5]])
    assert PrefixAware().route(request(KEYS), view, 0.0) == 1


def test_prefix_aware_balance_guard_needs_both_thresholds() -> None:
    router = PrefixAware(balance_abs_threshold=32, balance_rel_threshold=1.5)
    cached = [KEYS, [], []]
    # 40 vs 5: 35 > 32 and 40 > 1.5 × 5 → overloaded: least loaded (replica 2) instead.
    assert router.route(request(KEYS), FakeView([40, 9, 5], cached), 0.0) == 2
    # 36 vs 5: 31 ≤ 32 → stays with the cache.
    assert router.route(request(KEYS), FakeView([36, 9, 5], cached), 0.0) == 0
    # 140 vs 100: 40 > 32 but 140 ≤ 1.5 × 100 → stays with the cache.
    assert router.route(request(KEYS), FakeView([140, 120, 100], cached), 0.0) == 0


def test_prefix_aware_below_cache_threshold_or_no_keys_goes_least_loaded() -> None:
    router = PrefixAware(cache_threshold=0.3)
    view = FakeView([1, 7, 0], cached=[KEYS[:2], KEYS[:2], []])  # 2/10 < 0.3
    assert router.route(request(KEYS), view, 0.0) == 2
    assert router.route(request(None), view, 0.0) == 2
    assert PrefixAware(cache_threshold=0.2).route(request(KEYS), view, 0.0) == 0


def test_build_router_defaults_and_options() -> None:
    spec = RouterSpec(kind="prefix_aware", balance_abs_threshold=8, balance_rel_threshold=1.2,
                      cache_threshold=0.5)  # fmt: skip
    router = build_router(spec, seed=0)
    assert (router.balance_abs_threshold, router.balance_rel_threshold) == (8, 1.2)
    assert router.cache_threshold == 0.5
    with pytest.raises(ValueError, match="only for kind prefix_aware"):
        RouterSpec(kind="round_robin", balance_abs_threshold=3)
