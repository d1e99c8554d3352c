"""The fleet's scaling decisions as pure functions: what to start and what to stop.

The simpy wiring (`infsim.sim.fleet`) describes each pool's live replicas as
`MemberView`s, asks for a `ScalePlan` and carries it out (cold starts, drains, releases).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemberView:
    """One live replica of a pool as the controller sees it (in the pool's order)."""

    member_id: int
    serving: bool  # False: still cold-starting (provisioning, loading, starting)
    num_outstanding: int  # waiting + running requests (0 while cold)


@dataclass(frozen=True, slots=True)
class ScalePlan:
    num_start: int  # new replicas to cold-start
    stop: tuple[int, ...]  # member ids to stop, in order (cancel if cold, else drain)


def scale_plan(desired: int, live: list[MemberView]) -> ScalePlan:
    """Reach `desired` live replicas: start the missing ones, or stop the surplus: cold
    replicas first (newest first: the least sunk cost), then the least-loaded serving ones
    (ties: the newest), as Knative and the HPA's scale-down do not pick busy pods first."""
    if desired > len(live):
        return ScalePlan(desired - len(live), ())
    surplus = len(live) - desired
    if not surplus:
        return ScalePlan(0, ())
    cold = [m.member_id for m in reversed(live) if not m.serving]
    serving = [m for m in live if m.serving]
    warm = [m.member_id for m in sorted(serving, key=lambda m: (m.num_outstanding, -m.member_id))]
    return ScalePlan(0, tuple((cold + warm)[:surplus]))


@dataclass(frozen=True, slots=True)
class HitPlan:
    start_replacement: bool  # cold-start a replacement replica in the same pool
    lose_now: bool  # lost at once; else drained through the spot notice, lost at its end


def hit_plan(kind: str, serving: bool, draining: bool) -> HitPlan:
    """What a failure or a spot preemption notice does to a replica: a failure, or a
    notice to a replica that is not serving, loses it now; a notice to a serving replica
    drains it until the notice ends. Either way a replacement starts, unless the replica
    was already draining (the pool wanted it gone)."""
    if kind == "failure" or not serving:
        return HitPlan(start_replacement=not draining, lose_now=True)
    return HitPlan(start_replacement=True, lose_now=False)
