"""Pure fleet policies: the HPA formula, stabilization, panic, activator, cold start,
failure draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infsim.fleet.autoscaler import Autoscaler, SignalWindow, hpa_desired
from infsim.fleet.cold_start import ColdStartModel
from infsim.fleet.failures import FailureModel
from infsim.fleet.spec import AutoscalingSpec, ColdStartSpec, FailuresSpec


def spec(**kw) -> AutoscalingSpec:
    base = {"target_per_replica": 10.0, "window_s": 1.0, "scale_down_stabilization_s": 0.0}
    return AutoscalingSpec(**{**base, **kw})


@pytest.mark.parametrize(
    ("ready", "total", "target", "tol", "want"),
    [
        (2, 40.0, 10.0, 0.1, 4),  # ratio 2 → ceil(2 × 2)
        (2, 21.0, 10.0, 0.1, 2),  # ratio 1.05 within tolerance
        (2, 23.0, 10.0, 0.1, 3),  # ratio 1.15 → ceil(2.3)
        (4, 10.0, 10.0, 0.1, 1),  # ratio 0.25 → ceil(1.0)
        (3, 0.0, 10.0, 0.1, 0),  # no demand → 0
        (0, 25.0, 10.0, 0.1, 3),  # nobody ready: ceil(total / target)
        (0, 0.0, 10.0, 0.1, 0),
    ],
)
def test_hpa_formula(ready, total, target, tol, want) -> None:
    assert hpa_desired(ready, total, target, tol) == want


@given(
    st.integers(1, 50), st.floats(0, 1e4, allow_nan=False), st.floats(0.1, 100), st.floats(0, 0.5)
)
def test_hpa_matches_total_over_target_outside_tolerance(ready, total, target, tol) -> None:
    got = hpa_desired(ready, total, target, tol)
    ratio = total / ready / target
    if abs(ratio - 1) <= tol:
        assert got == ready
    else:
        assert got == math.ceil(ready * ratio)
        assert abs(got - total / target) < 1 + 1e-9 * max(1.0, total / target)


def test_signal_window_mean() -> None:
    w = SignalWindow(keep_s=10)
    for t, v in [(1, 2.0), (2, 4.0), (3, 6.0)]:
        w.add(t, v)
    assert w.mean(3, 1.5) == 5.0  # samples at 2 and 3
    assert w.mean(3, 10) == 4.0
    assert w.mean(100, 1) == 0.0


def test_scale_down_stabilization_keeps_the_window_max() -> None:
    a = Autoscaler(spec(scale_down_stabilization_s=3.0), 0, 10)
    decisions = []
    for t, demand in [(1, 50.0), (2, 10.0), (3, 10.0), (4, 10.0), (5, 10.0)]:
        a.window.add(t, demand)
        current = decisions[-1] if decisions else 1
        decisions.append(a.decide(t, current, current, 0).desired)
    # 5 at t=1; the recommendation 1 holds the 5 until t=1 leaves the 3 s window (t=5).
    assert decisions == [5, 5, 5, 5, 1]


def test_scale_up_stabilization_takes_the_window_min() -> None:
    a = Autoscaler(spec(scale_up_stabilization_s=2.0), 0, 10)
    out = []
    for t, demand in [(1, 10.0), (2, 50.0), (3, 50.0), (4, 50.0)]:
        a.window.add(t, demand)
        out.append(a.decide(t, 1, 1, 0).desired)
    assert out == [1, 1, 1, 5]


def test_bounds_and_scale_down_delay() -> None:
    a = Autoscaler(spec(scale_down_delay_s=5.0), 2, 4)
    a.window.add(1, 100.0)
    assert a.decide(1, 2, 2, 0).desired == 4  # clamped to max
    a.window.add(2, 0.0)
    assert a.decide(2, 4, 4, 0).desired == 4  # within 5 s of the scale-up
    a.window.add(7, 0.0)
    assert a.decide(7, 4, 4, 0).desired == 2  # clamped to min


def test_activator_wakes_a_pool_at_zero() -> None:
    a = Autoscaler(spec(signal="kv_usage", target_per_replica=0.7), 0, 3)
    a.window.add(1, 0.0)
    assert a.decide(1, 0, 0, 0).desired == 0
    a.window.add(2, 0.0)
    assert a.decide(2, 0, 0, 5).desired == 1


def test_panic_scales_on_the_short_window_and_blocks_scale_down() -> None:
    a = Autoscaler(spec(window_s=60.0, panic_window_s=6.0, panic_threshold=2.0), 1, 20)
    for t in range(0, 60, 2):
        a.window.add(t, 10.0)  # steady: 1 replica
    a.window.add(60, 100.0)  # burst: the 60 s mean is 13, the 6 s mean (56, 58, 60) is 40
    d = a.decide(60, 1, 1, 0)
    assert d.raw == 2  # stable window alone: ceil(13 / 10)
    assert d.panic
    assert d.desired == 4
    for t in range(62, 100, 2):
        a.window.add(t, 0.0)
    assert a.decide(98, 4, 4, 0).desired == 4  # no scale-down within the panic hold
    a.window.add(130, 0.0)
    assert a.decide(130, 4, 4, 0).desired == 1


def test_cold_start_phases() -> None:
    cs = ColdStartSpec(
        provisioning={"kind": "fixed", "value_s": 30.0},
        weight_source="network_storage",
        engine_start_s=20.0,
        graph_capture_s=10.0,
    )
    model = ColdStartModel(cs, weight_bytes=16e9)
    draw = model.sample(np.random.default_rng(0))
    assert draw.weight_load_s == 16.0  # 16 GB at 1 GB/s
    assert draw.total_s == 30.0 + 16.0 + 20.0 + 10.0
    fast = ColdStartModel(cs.model_copy(update={"weight_load_bytes_per_s": 32e9}), 16e9)
    assert fast.weight_load_s == 0.5


def test_cold_start_lognormal_is_seeded() -> None:
    cs = ColdStartSpec(provisioning={"kind": "lognormal", "median_s": 60.0, "sigma": 0.5})
    model = ColdStartModel(cs, 1e9)
    a = [model.sample(np.random.default_rng(3)).provisioning_s for _ in range(2)]
    assert a[0] == a[1]
    assert a[0] > 0
    many = [model.sample(np.random.default_rng(i)).provisioning_s for i in range(2000)]
    assert np.median(many) == pytest.approx(60.0, rel=0.05)


def test_failure_draws() -> None:
    off = FailureModel(FailuresSpec())
    assert off.draw(0.0, 0.0, np.random.default_rng(0)) is None
    mtbf = FailureModel(FailuresSpec(replica_mtbf_s=100.0))
    draws = [mtbf.draw(5.0, 0.0, np.random.default_rng(i)) for i in range(4000)]
    assert all(d.kind == "failure" and d.at_s > 5.0 for d in draws)
    assert np.mean([d.at_s - 5.0 for d in draws]) == pytest.approx(100.0, rel=0.05)
    spot = FailureModel(FailuresSpec())
    d = spot.draw(0.0, 3600.0, np.random.default_rng(0))  # one per second on average
    assert d.kind == "preemption"


def test_request_outcome_policy() -> None:
    requeue = FailureModel(FailuresSpec(policy="requeue", max_retries=2))
    assert [requeue.request_outcome(n) for n in (1, 2, 3)] == ["requeue", "requeue", "fail"]
    fail = FailureModel(FailuresSpec(policy="fail"))
    assert fail.request_outcome(1) == "fail"


def test_progress_guard_counts_losses_in_a_row_without_a_request_ending() -> None:
    from infsim.fleet.failures import ProgressGuard

    guard = ProgressGuard(limit=2)
    assert not guard.stuck_after_loss(num_done=5)
    assert not guard.stuck_after_loss(num_done=5)
    assert guard.stuck_after_loss(num_done=5)  # the third loss with nothing ended between
    assert not guard.stuck_after_loss(num_done=6)  # a request ended: the count restarts
    assert not guard.stuck_after_loss(num_done=6)
    assert guard.stuck_after_loss(num_done=6)
