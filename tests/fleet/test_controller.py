"""The fleet controller's scaling plan is a pure function (`infsim.fleet.controller`)."""

from __future__ import annotations

from infsim.fleet.controller import MemberView, ScalePlan, scale_plan

LIVE = [MemberView(0, True, 5), MemberView(1, True, 2), MemberView(2, False, 0),
        MemberView(3, True, 2), MemberView(4, False, 0)]  # fmt: skip


def test_up_starts_the_missing_replicas() -> None:
    assert scale_plan(8, LIVE) == ScalePlan(3, ())


def test_steady_does_nothing() -> None:
    assert scale_plan(5, LIVE) == ScalePlan(0, ())


def test_down_cancels_cold_newest_first_then_drains_least_loaded_newest_first() -> None:
    assert scale_plan(4, LIVE).stop == (4,)
    assert scale_plan(3, LIVE).stop == (4, 2)
    # Serving 1 and 3 tie at 2 outstanding: the newer (3) goes first; 0 (5 outstanding) last.
    assert scale_plan(1, LIVE).stop == (4, 2, 3, 1)
    assert scale_plan(0, LIVE).stop == (4, 2, 3, 1, 0)


def test_hit_plan() -> None:
    from infsim.fleet.controller import HitPlan, hit_plan

    assert hit_plan("failure", serving=True, draining=False) == HitPlan(True, True)
    assert hit_plan("failure", serving=False, draining=True) == HitPlan(False, True)
    assert hit_plan("spot", serving=False, draining=False) == HitPlan(True, True)
    assert hit_plan("spot", serving=True, draining=False) == HitPlan(True, False)
