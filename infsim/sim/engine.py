"""Build and run one simulation: the only place that owns a `simpy.Environment`.

    trace rows ──arrival process──► router.route(view) ──► Replica.submit
                                                           Replica loop (sim/replica.py)
                                                           ──► Recorder

Determinism: requests are created in trace order, ties in simpy are broken by event
insertion order, routers break ties by replica index, and no wall clock or global counter
enters model state; the same scenario and seed give identical records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import simpy
from simpy.events import URGENT

from infsim.cost.factory import build_cost_model
from infsim.kvcache.counter import BlockCounter
from infsim.kvcache.hashing import BlockKeyer
from infsim.kvcache.prefix_cache import PrefixCachingKV
from infsim.metrics.recorder import Recorder
from infsim.routing import policies as _policies  # noqa: F401  (registers routers)
from infsim.routing.base import routers
from infsim.scenario.resolve import ResolvedScenario
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig
from infsim.scheduling.request import RequestState, Status
from infsim.sim.cluster import ReplicaSetView
from infsim.sim.replica import Replica
from infsim.workload.trace import Trace

ProgressFn = Callable[[float, int], None]


@dataclass(frozen=True)
class SimOutput:
    recorder: Recorder
    wall_s: float
    simulated_s: float
    num_events: int


def _scheduler(rs: ResolvedScenario, has_prefix_ids: bool) -> ContinuousBatchingScheduler:
    """vLLM V1 scheduler over the KV manager the scenario needs.

    Prefix caching without any prefix identity in the trace can never hit, so block ids
    could not change any outcome: the cheap `BlockCounter` gives identical results.
    """
    e = rs.scenario.engine
    config = SchedulerConfig(
        max_num_seqs=e.max_num_seqs,
        max_num_batched_tokens=e.max_num_batched_tokens,
        enable_chunked_prefill=e.enable_chunked_prefill,
        long_prefill_token_threshold=e.long_prefill_token_threshold,
        scheduling_policy=e.scheduling_policy,
        max_model_len=e.max_model_len,
    )
    kv_cls = PrefixCachingKV if e.enable_prefix_caching and has_prefix_ids else BlockCounter
    return ContinuousBatchingScheduler(config, kv_cls(rs.kv.num_usable_blocks, e.block_size))


def simulate(rs: ResolvedScenario, trace: Trace, progress: ProgressFn | None = None) -> SimOutput:
    wall0 = time.perf_counter()
    env = simpy.Environment()
    recorder = Recorder()
    cost_model = build_cost_model(rs)
    fast = rs.scenario.simulation.fast_forward
    replicas = [
        Replica(
            env,
            i,
            _scheduler(rs, trace.hash_block_size_tokens is not None),
            cost_model,
            recorder,
            fast,
        )
        for i in range(rs.scenario.deployment.replicas)
    ]
    router = routers.get(rs.scenario.router.kind)()
    env.process(_arrivals(env, rs, trace, router, replicas, recorder))
    if progress is not None:
        env.process(_progress(env, trace, recorder, progress))
    env.run()
    simulated_s = max((r.finish_s for r in recorder.requests), default=0.0)
    simulated_s = max(simulated_s, float(trace.arrival_s[-1]) if trace.num_requests else 0.0)
    num_events = len(recorder.requests) + recorder.num_rows
    return SimOutput(recorder, time.perf_counter() - wall0, simulated_s, num_events)


def _arrivals(
    env: simpy.Environment,
    rs: ResolvedScenario,
    trace: Trace,
    router: Any,
    replicas: list[Replica],
    recorder: Recorder,
) -> Generator[simpy.Event, Any, None]:
    view = ReplicaSetView(replicas)
    keyer = None
    hashes: list[list[int] | None] = [None] * trace.num_requests
    if rs.scenario.engine.enable_prefix_caching and trace.hash_block_size_tokens:
        keyer = BlockKeyer(trace.hash_block_size_tokens, rs.scenario.engine.block_size)
        hashes = trace.prefix_hash_ids_list()
    rows = zip(
        trace.request_id.tolist(),
        trace.arrival_s.tolist(),
        trace.num_prompt_tokens.tolist(),
        trace.num_output_tokens.tolist(),
        trace.priority.tolist(),
        hashes,
        strict=True,
    )
    for index, (rid, arrival, prompt, output, prio, hash_ids) in enumerate(rows):
        if arrival > env.now:
            yield _arrival_event(env, arrival - env.now)
        keys = keyer.keys(hash_ids, prompt + output) if keyer and hash_ids else None
        req = RequestState(
            index=index,
            request_id=rid,
            arrival_s=arrival,
            num_prompt_tokens=prompt,
            num_output_tokens=output,
            priority=prio,
            block_keys=keys,
        )
        recorder.on_request(req)
        replicas[router.route(req, view, env.now)].submit(req)


def _arrival_event(env: simpy.Environment, delay_s: float) -> simpy.Event:
    """A timeout scheduled URGENT: an arrival at exactly a step end is always processed
    before the step end, so the request joins the next step whatever the order in which
    the two events were created (the rule the fast-forward relies on)."""
    event = simpy.Event(env)
    event._ok = True  # as simpy.Timeout does, at another priority
    event._value = None
    env.schedule(event, URGENT, delay_s)
    return event


def _progress(
    env: simpy.Environment, trace: Trace, recorder: Recorder, progress: ProgressFn
) -> Generator[simpy.Event, Any, None]:
    """Report (simulated seconds, finished requests) every 1% of the trace span."""
    span = max(float(trace.duration_s), 1e-9)
    total = trace.num_requests
    while True:
        yield env.timeout(span / 100)
        done = sum(1 for r in recorder.requests if r.status >= Status.FINISHED)
        progress(env.now, done)
        if done >= total:
            return
