"""The fleet in simulated time: pools of replicas with a lifecycle, the gateway, the
control loop and failures. Wiring only: policies live in `infsim.fleet` (pure).

    lifecycle:  PROVISIONING → LOADING → STARTING → SERVING → DRAINING → RELEASED
                (any live state) ─────── failure / end of spot notice ──────► FAILED

    arrivals ─► Fleet.submit ─► router over SERVING replicas ─► Replica.submit
                      └─ no replica serving: the gateway queue (flushed when one is)

Initial replicas serve at t = 0 (warm). A new replica (scale-up, replacement) pays its
pool's cold start; a lost replica is replaced at once through the same path (the
ReplicaSet controller), whatever the autoscaler then decides. Scale-down cancels cold
replicas first, then drains the least-loaded serving ones: a draining replica takes no
new requests, finishes its own and is released. Every live or draining replica is
billed from its request (t = 0 for initial ones) to its release or loss.

Randomness: cold-start and failure draws come from their own generators derived from
`scenario.seed` (streams `COLD_START_STREAM`, `FAILURE_STREAM`), drawn in event order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import simpy

from infsim.core.request import RequestState, Status
from infsim.errors import InputError
from infsim.fleet.autoscaler import Autoscaler
from infsim.fleet.cold_start import ColdStartModel
from infsim.fleet.controller import MemberView, hit_plan, scale_plan
from infsim.fleet.failures import FailureDraw, FailureModel, ProgressGuard
from infsim.fleet.lifecycle import BILLED, LIVE, State
from infsim.fleet.signals import PoolSample, signals
from infsim.fleet.spec import AutoscalingSpec, FailuresSpec
from infsim.metrics.recorder import Recorder
from infsim.routing.base import Router
from infsim.scenario.pools import ResolvedPool
from infsim.sim.cluster import ReplicaSetView
from infsim.sim.fleet_records import FleetRecord, FleetTimeline, Member, PoolRuntime, kv_usage
from infsim.sim.replica import Replica

COLD_START_STREAM = 1
MAX_LOSSES_WITHOUT_PROGRESS = 1_000
"""Replica losses in a row, with no request ending in between, that end a run as stuck."""
MONITOR_INTERVAL_S = 1.0  # fleet_timeline sampling of a dynamic fleet without control loop
FAILURE_STREAM = 2


@dataclass(frozen=True)
class FleetPlan:
    """What the fleet is: its pools, the control loop and failure sections, the seed of its
    random streams and the number of client requests the run will end."""

    pools: list[ResolvedPool]
    num_requests: int
    seed: int
    autoscaling: AutoscalingSpec | None = None
    failures: FailuresSpec | None = None


@dataclass(frozen=True)
class FleetWiring:
    """How the fleet plugs into the run: the recorder, the router, how a replica is built
    (`make_replica(pool, replica id, on_finished)`) and where a request's end is reported."""

    recorder: Recorder
    router: Router
    make_replica: Callable[[ResolvedPool, int, Callable[[RequestState], None]], Replica]
    on_finished: Callable[[RequestState], None] | None = None
    on_rejected: Callable[[RequestState], None] | None = None


class Fleet:
    def __init__(self, env: simpy.Environment, plan: FleetPlan, wiring: FleetWiring) -> None:
        pools, seed = plan.pools, plan.seed
        autoscaling, failures = plan.autoscaling, plan.failures
        self.env = env
        self.recorder = wiring.recorder
        self.router = wiring.router
        self.make_replica = wiring.make_replica  # (ResolvedPool, replica id, on_finished)
        self.num_requests = plan.num_requests
        self.on_finished = wiring.on_finished
        self.on_rejected = wiring.on_rejected
        self.autoscaling = autoscaling
        self.failures = failures
        self.failure_model = FailureModel(failures)
        self.rng_cold = np.random.default_rng([seed, COLD_START_STREAM])
        self.rng_fail = np.random.default_rng([seed, FAILURE_STREAM])
        self.pools: list[PoolRuntime] = []
        for i, p in enumerate(pools):
            scaler = None
            if autoscaling is not None and p.spec.min_count < p.spec.max_count:
                scaler = Autoscaler(autoscaling, p.spec.min_count, p.spec.max_count)
            cold = ColdStartModel(p.spec.cold_start, p.weight_bytes_per_replica)
            self.pools.append(PoolRuntime(i, p, cold, scaler))
        # Spot interruptions apply with or without a failures: section (its defaults then:
        # requeue, 120 s notice).
        self.random_failures = (failures is not None and failures.replica_mtbf_s is not None) or (
            any(p.spec.pricing.spot_interruptions_per_hour for p in pools)
        )
        # Static: one pool, no control loop, no failures: the path of the speed benchmark.
        self.dynamic = (
            len(pools) > 1
            or failures is not None
            or self.random_failures
            or any(p.autoscaler for p in self.pools)
            or any(p.spec.replicas == 0 for p in pools)
        )
        self.serving: list[Replica] = []
        self.view = ReplicaSetView(self.serving)
        self.gateway: deque[RequestState] = deque()
        self.max_gateway_queued = 0
        self.num_gateway_queued = 0
        self.num_submitted = 0
        self.num_replicas = 0  # replica ids, in creation order
        self.num_members = 0
        self.failure_events: list[dict] = []
        self.num_losses: dict[int, int] = {}
        self.progress = ProgressGuard(MAX_LOSSES_WITHOUT_PROGRESS)
        self.failed: list[RequestState] = []
        self.timeline = FleetTimeline()
        for pool in self.pools:
            pool.desired = pool.pool.spec.replicas
            for _ in range(pool.pool.spec.replicas):
                member = self._new_member(pool, State.SERVING)
                self._serve(member)
        for pool in self.pools:
            self._row(pool)
        if any(p.autoscaler for p in self.pools):
            env.process(self._control_loop(autoscaling.interval_s))
        elif self.dynamic:  # no control loop: sample the timeline anyway
            env.process(self._monitor(MONITOR_INTERVAL_S))
        if failures is not None and failures.events:
            env.process(self._scheduled_failures(failures))

    # -- requests ---------------------------------------------------------------------
    def submit(self, req: RequestState) -> bool:
        """Route `req` to a serving replica (False: that replica rejects it for good),
        or hold it at the gateway while none serves."""
        self.num_submitted += 1
        serving = self.serving
        if not serving:
            self.gateway.append(req)
            self.num_gateway_queued += 1
            self.max_gateway_queued = max(self.max_gateway_queued, len(self.gateway))
            if not any(pool.live() for pool in self.pools):
                self._activate()
            return True
        return serving[self.router.route(req, self.view, self.env.now)].submit(req)

    def _activate(self) -> None:
        """Knative's activator: a request at a fleet scaled to zero starts one replica of
        the first autoscaled pool at once, without waiting for the next tick."""
        for pool in self.pools:
            if pool.autoscaler is not None and pool.autoscaler.max_replicas >= 1:
                pool.autoscaler.note_scale_up(self.env.now)
                self.reconcile(pool, max(pool.desired, 1))
                return

    def _flush_gateway(self) -> None:
        while self.gateway and self.serving:
            req = self.gateway.popleft()
            replica = self.serving[self.router.route(req, self.view, self.env.now)]
            if not replica.submit(req) and self.on_rejected is not None:
                self.on_rejected(req)

    def done(self) -> bool:
        return self.recorder.num_done >= self.num_requests

    # -- lifecycle --------------------------------------------------------------------
    def _new_member(self, pool: PoolRuntime, state: State) -> Member:
        member = Member(self.num_members, pool, state, self.env.now)
        self.num_members += 1
        pool.members.append(member)
        if self.random_failures:
            spot = pool.pool.spec.pricing.spot_interruptions_per_hour
            draw = self.failure_model.draw(self.env.now, spot, self.rng_fail)
            if draw is not None:
                self.env.process(self._random_failure(member, draw))
        return member

    def _set_state(self, member: Member, state: State) -> None:
        member.state = state
        member.history.append((self.env.now, state))
        self._row(member.pool)

    def _serve(self, member: Member) -> None:
        on_finished = self.on_finished
        if self.dynamic:
            on_finished = partial(self._finished, member)
        member.replica = self.make_replica(member.pool.pool, self.num_replicas, on_finished)
        self.num_replicas += 1
        self.serving.append(member.replica)
        if member.state != State.SERVING:
            self._set_state(member, State.SERVING)
        self._flush_gateway()

    def _finished(self, member: Member, req: RequestState) -> None:
        if self.on_finished is not None:
            self.on_finished(req)
        if member.state == State.DRAINING and not member.replica.scheduler.has_work():
            self._set_state(member, State.RELEASED)

    def scale_up(self, pool: PoolRuntime, count: int) -> None:
        for _ in range(count):
            member = self._new_member(pool, State.PROVISIONING)
            member.cold_start = pool.cold.sample(self.rng_cold)
            self._row(pool)
            self.env.process(self._cold_start(member))

    def _cold_start(self, member: Member) -> Generator[simpy.Event, Any, None]:
        cs, t = member.cold_start, self.env.now
        phases = (
            (cs.provisioning_s, State.LOADING),
            (cs.weight_load_s, State.STARTING),
            (cs.engine_start_s + cs.graph_capture_s, State.SERVING),
        )
        for duration_s, next_state in phases:
            t += duration_s
            yield self.env.timeout(t - self.env.now)
            if member.state not in LIVE or self.done():
                return  # cancelled by a scale-down, lost, or the run is over
            if next_state == State.SERVING:
                self._serve(member)
            else:
                self._set_state(member, next_state)

    def drain(self, member: Member) -> None:
        if member.state != State.SERVING:
            self._set_state(member, State.RELEASED)
            return
        self.serving.remove(member.replica)
        if member.replica.scheduler.has_work():
            self._set_state(member, State.DRAINING)
        else:
            self._set_state(member, State.RELEASED)

    def reconcile(self, pool: PoolRuntime, desired: int) -> None:
        """Carry out the controller's plan for `desired` live replicas (fleet/controller.py)."""
        if desired != pool.desired:
            pool.scale_events.append({"time_s": self.env.now, "from": pool.desired, "to": desired})
            pool.desired = desired
        live = pool.live()
        views = [MemberView(m.member_id, m.state == State.SERVING,
                            m.replica.num_outstanding if m.state == State.SERVING else 0)
                 for m in live]  # fmt: skip
        plan = scale_plan(desired, views)
        if plan.num_start:
            self.scale_up(pool, plan.num_start)
        by_id = {m.member_id: m for m in live}
        for member_id in plan.stop:
            self.drain(by_id[member_id])

    # -- failures ---------------------------------------------------------------------
    def _random_failure(
        self, member: Member, draw: FailureDraw
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(draw.at_s - self.env.now)
        if self.done() or member.state not in BILLED:
            return
        self.hit(member, draw.kind)

    def _scheduled_failures(self, spec: FailuresSpec) -> Generator[simpy.Event, Any, None]:
        by_name = {p.name: p for p in self.pools}
        for event in sorted(spec.events, key=lambda e: e.at_s):
            if event.at_s > self.env.now:
                yield self.env.timeout(event.at_s - self.env.now)
            targets = [m for m in by_name[event.pool].members if m.state in BILLED]
            if event.replica >= len(targets):
                self._event(event.pool, None, event.kind, "skipped: no such replica", 0, 0)
                continue
            self.hit(targets[event.replica], event.kind)

    def hit(self, member: Member, kind: str) -> None:
        """A failure (lost now) or a spot preemption notice (lost after the notice), as
        the controller's `hit_plan` says."""
        plan = hit_plan(kind, member.state == State.SERVING, member.state == State.DRAINING)
        if plan.lose_now:
            if plan.start_replacement:
                self.scale_up(member.pool, 1)
            self.lose(member, kind)
            return
        self._event(member.pool.name, member.replica.replica_id, kind, "notice", 0, 0)
        self.serving.remove(member.replica)
        self._set_state(member, State.DRAINING)
        if plan.start_replacement:
            self.scale_up(member.pool, 1)
        if not member.replica.scheduler.has_work():
            self._set_state(member, State.RELEASED)
            return
        self.env.process(self._notice_end(member, self.failure_model.notice_s))

    def _notice_end(self, member: Member, notice_s: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(notice_s)
        if member.state == State.DRAINING:
            self.lose(member, "preemption")

    def lose(self, member: Member, kind: str) -> None:
        self._check_progress(kind)
        replica = member.replica
        if replica is None:
            self._set_state(member, State.FAILED)
            self._event(member.pool.name, None, kind, "lost while starting", 0, 0)
            return
        if member.state == State.SERVING:
            self.serving.remove(replica)
        self._set_state(member, State.FAILED)
        replica.stop()
        in_flight = sorted(replica.take_unfinished(), key=lambda r: (r.arrival_s, r.index))
        requeue: list[RequestState] = []
        for req in in_flight:
            losses = self.num_losses[req.index] = self.num_losses.get(req.index, 0) + 1
            if self.failure_model.request_outcome(losses) == "requeue":
                req.retry_from_scratch()
                requeue.append(req)
            else:
                req.status = Status.FAILED
                req.reject_reason = f"replica lost ({kind})"
                self.failed.append(req)
                if self.on_finished is not None:
                    self.on_finished(req)
        self._event(
            member.pool.name,
            replica.replica_id,
            kind,
            "lost",
            len(requeue),
            len(in_flight) - len(requeue),
        )
        for req in requeue:
            if not self.submit(req) and self.on_rejected is not None:
                self.on_rejected(req)

    def _check_progress(self, kind: str) -> None:
        """End a run whose replicas are lost over and over while no request ends (a storm
        of failures or spot interruptions faster than replicas start and serve): it would
        never finish."""
        if self.progress.stuck_after_loss(self.recorder.num_done):
            raise InputError(
                f"the simulation made no progress: {MAX_LOSSES_WITHOUT_PROGRESS:,} replicas "
                f"were lost (last: {kind}, at t = {self.env.now:,.0f} s) while no request "
                f"ended ({self.recorder.num_done:,} of {self.num_requests:,} done). Replicas "
                "are lost faster than they can start and serve: check failures "
                "(replica_mtbf_s, spot_interruptions_per_hour, events) against the cold start"
            )

    def _event(
        self, pool: str, replica_id: int | None, kind: str, what: str, requeued: int, failed: int
    ) -> None:
        self.failure_events.append(
            {
                "time_s": self.env.now,
                "pool": pool,
                "replica_id": replica_id,
                "kind": kind,
                "event": what,
                "num_requeued": requeued,
                "num_failed": failed,
            }
        )

    # -- control loop -----------------------------------------------------------------
    def _control_loop(self, interval_s: float) -> Generator[simpy.Event, Any, None]:
        while not self.done():
            yield self.env.timeout(interval_s)
            now = self.env.now
            for pool in self.pools:
                if pool.autoscaler is None:
                    self._row(pool)
                    continue
                value = self.signal(pool, interval_s)
                pool.autoscaler.window.add(now, value)
                live = pool.live()
                ready = sum(1 for m in live if m.state == State.SERVING)
                decision = pool.autoscaler.decide(now, ready, len(live), len(self.gateway))
                self.reconcile(pool, decision.desired)
                self._row(pool)

    def _monitor(self, interval_s: float) -> Generator[simpy.Event, Any, None]:
        while not self.done():
            yield self.env.timeout(interval_s)
            for pool in self.pools:
                self._row(pool)

    def signal(self, pool: PoolRuntime, interval_s: float) -> float:
        """The pool's autoscaling signal now (`infsim.fleet.signals`), from a sample of its
        serving replicas and the gateway (whose queue any pool would have to serve)."""
        replicas = [m.replica for m in pool.members if m.state == State.SERVING]
        sample = PoolSample(
            num_outstanding=tuple(r.num_outstanding for r in replicas),
            num_waiting=tuple(r.num_waiting for r in replicas),
            kv_usage=tuple(kv_usage(r) for r in replicas),
            busy=tuple(r.scheduler.has_work() for r in replicas),
            num_gateway_queued=len(self.gateway),
            num_routed=self.num_submitted - pool.last_submitted,
            interval_s=interval_s,
        )
        pool.last_submitted = self.num_submitted
        return signals.get(self.autoscaling.signal)(sample)

    # -- records ----------------------------------------------------------------------
    def _row(self, pool: PoolRuntime) -> None:
        self.timeline.record(self.env.now, pool, len(self.gateway))

    def finish(self, end_s: float) -> FleetRecord:
        for pool in self.pools:
            self._row(pool)
        return FleetRecord(
            self.pools,
            self.timeline.table(end_s, len(self.pools)),
            self.failure_events,
            self.num_losses,
            self.failed,
            self.max_gateway_queued,
            self.num_gateway_queued,
            self.failure_model.spec if self.failures or self.random_failures else None,
            self.dynamic,
        )
