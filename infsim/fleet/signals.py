"""Autoscaling signals: what a pool's control loop measures, one registered function each.

Each signal is pure: it reads a `PoolSample` (what the wiring, `infsim.sim.fleet`, saw on
the pool's serving replicas and the gateway at a control tick) and returns the pool's
total. The scenario's `autoscaling.signal` choices come from this registry: adding a
signal is one function here plus a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infsim.registry import Registry


@dataclass(frozen=True, slots=True)
class PoolSample:
    """One pool at a control tick: per serving replica, and fleet-wide."""

    num_outstanding: tuple[int, ...]  # waiting + running requests, per serving replica
    num_waiting: tuple[int, ...]  # waiting requests (inbox included), per serving replica
    kv_usage: tuple[float, ...]  # fraction of KV blocks in use, per serving replica
    busy: tuple[bool, ...]  # whether the replica has work, per serving replica
    num_gateway_queued: int  # requests queued at the gateway (any pool could serve them)
    num_routed: int  # requests routed to the fleet since the pool's last tick
    interval_s: float  # control-loop period


Signal = Callable[[PoolSample], float]
signals: Registry[Signal] = Registry("autoscaling signal")


@signals.register("concurrency")
def concurrency(s: PoolSample) -> float:
    """Requests in flight: waiting + running on the pool's replicas, plus the gateway queue."""
    return s.num_gateway_queued + sum(s.num_outstanding)


@signals.register("queue_depth")
def queue_depth(s: PoolSample) -> float:
    """Waiting requests on the pool's replicas, plus the gateway queue."""
    return s.num_gateway_queued + sum(s.num_waiting)


@signals.register("request_rate")
def request_rate(s: PoolSample) -> float:
    """Requests routed per second over the last control interval."""
    return s.num_routed / s.interval_s


@signals.register("kv_usage")
def kv_usage(s: PoolSample) -> float:
    """KV usage fractions summed over the pool's replicas."""
    return sum(s.kv_usage)


@signals.register("gpu_busy")
def gpu_busy(s: PoolSample) -> float:
    """Replicas with work (waiting or running requests)."""
    return float(sum(s.busy))
