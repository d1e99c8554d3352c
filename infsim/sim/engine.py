"""Build and run one simulation: the only place that owns a `simpy.Environment`.

    trace rows ──arrival process──► router.route(view) ──► Replica.submit
       ▲  (closed loop: wait for a free slot)              Replica loop (sim/replica.py)
       └───────────── slot freed on finish ◄─────────────── ──► Recorder

Determinism: requests are created in trace order, ties in simpy are broken by event
insertion order, routers break ties by replica index, and no wall clock or global counter
enters model state; the same scenario and seed give identical records.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from infsim import arrays
from infsim.core.request import RequestState
from infsim.cost.base import CostModel
from infsim.cost.draft import SpeculativeCostModel, speculative_cost_model
from infsim.cost.factory import build_cost_model, build_pipeline_cost
from infsim.cost.noise import SpeedNoise
from infsim.errors import InputError
from infsim.frontend.api_server import ApiServers
from infsim.kvcache.counter import BlockCounter
from infsim.kvcache.hashing import BlockKeyer
from infsim.kvcache.prefix_cache import PrefixCachingKV, keying_kernels, prepare_kernels
from infsim.metrics.recorder import Recorder
from infsim.routing import policies as _policies  # noqa: F401  (registers routers)
from infsim.routing.load_aware import build_router
from infsim.scenario.pools import ResolvedPool
from infsim.scenario.run import ResolvedRun
from infsim.scenario.vllm_defaults import NEWEST_VLLM, is_v0
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig
from infsim.sim.disagg import Disaggregation, DisaggRun
from infsim.sim.events import urgent_event
from infsim.sim.fleet import Fleet, FleetPlan, FleetWiring
from infsim.sim.fleet_records import FleetRecord
from infsim.sim.pipelined import PipelinedReplica
from infsim.sim.replica import OutputLag, Replica
from infsim.speculative.speculator import Speculator
from infsim.speculative.summary import SpeculativeRun, collect
from infsim.workload.trace import Trace

if TYPE_CHECKING:
    from infsim.sim.split_part import SplitPart

ProgressFn = Callable[[float, int], None]


@dataclass(frozen=True)
class SimOutput:
    recorder: Recorder
    wall_s: float
    simulated_s: float
    num_events: int
    fleet: FleetRecord | None = None
    speculative: SpeculativeRun | None = None
    disaggregation: DisaggRun | None = None


def _cost_model(pool: ResolvedPool) -> CostModel:
    """The pool's replica cost model, plus the proposer's time when it speculates."""
    cfg = pool.replica
    model = build_cost_model(cfg)
    return speculative_cost_model(cfg, model) if cfg.speculative else model


def api_servers(pool: ResolvedPool) -> ApiServers | None:
    """A replica's API servers, priced by the pool's resolved frontend costs (None when
    they are all zero)."""
    return None if pool.frontend.is_zero else ApiServers(pool.frontend)


def _scheduler(
    pool: ResolvedPool,
    has_prefix_ids: bool,
    speculator: Speculator | None = None,
    cls: type[ContinuousBatchingScheduler] = ContinuousBatchingScheduler,
) -> ContinuousBatchingScheduler:
    """vLLM V1 scheduler over the KV manager the scenario needs.

    Prefix caching without any prefix identity in the trace can never hit, so block ids
    could not change any outcome: the cheap `BlockCounter` gives identical results.
    vLLM V0's prompts-first order (chunked prefill off) applies to plain engines; the
    disaggregated roles (V1 only in vLLM) keep V1's order.
    """
    e = pool.engine
    v0_order = cls is ContinuousBatchingScheduler and is_v0(e.version or NEWEST_VLLM)
    config = SchedulerConfig(
        max_num_seqs=e.max_num_seqs,
        max_num_batched_tokens=e.max_num_batched_tokens,
        enable_chunked_prefill=e.enable_chunked_prefill,
        long_prefill_token_threshold=e.long_prefill_token_threshold,
        scheduling_policy=e.scheduling_policy,
        max_model_len=e.max_model_len,
        prefill_first=v0_order and not e.enable_chunked_prefill,
    )
    kv_cls = PrefixCachingKV if e.enable_prefix_caching and has_prefix_ids else BlockCounter
    kv = kv_cls(pool.kv.num_usable_blocks, e.block_size)
    return cls(config, kv, speculator)


def _has_prefix_ids(run: ResolvedRun, trace: Trace) -> bool:
    """Whether the trace identifies prefixes (without, prefix caching never hits and the
    pools only count blocks). When it does and a pool caches prefixes, the prefix pool's
    kernels are readied for the trace's size: about three block operations (taken,
    registered, freed) per block of its tokens (`prefix_cache.prepare_kernels`)."""
    if trace.hash_block_size_tokens is None:
        return False
    caching = [p.engine.block_size for p in run.pools if p.engine.enable_prefix_caching]
    if caching and trace.num_requests:
        tokens = int(trace.num_prompt_tokens.sum()) + int(trace.num_output_tokens.sum())
        prepare_kernels(3 * tokens // min(caching))
    return True


class ClosedLoopClient:
    """A benchmark client with at most `max_concurrency` requests in flight
    (`vllm bench serve --max-concurrency`, GuideLLM/AIPerf concurrency modes): a request is
    sent at its trace arrival time or, if all slots are taken, the moment an earlier one
    finishes; its arrival (the zero of TTFT and E2E) is that send time, as the client
    measures it. Measured on the live vLLM runs, the client's gap between a completion and
    the next send is 0.1–0.7 ms (median 0.3): modelled as zero."""

    def __init__(self, env: simpy.Environment, max_concurrency: int) -> None:
        self.env = env
        self.max_concurrency = max_concurrency
        self.num_in_flight = 0
        self._slot_freed: simpy.Event | None = None

    def acquire(self) -> Generator[simpy.Event, Any, None]:
        while self.num_in_flight >= self.max_concurrency:
            self._slot_freed = self.env.event()
            yield self._slot_freed
        self.num_in_flight += 1

    def release(self, _req: RequestState | None = None) -> None:
        self.num_in_flight -= 1
        if self._slot_freed is not None and not self._slot_freed.triggered:
            self._slot_freed.succeed()


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Container allocations between young-generation collections while a run goes
(CPython's default: 700). A run allocates many short-lived containers (batches, outcomes,
step rows); at the default, a 12,000-request Mooncake run collects ~150 times (37 ms of
its ~1.3 s), at 10,000 ten times (18 ms). Unreachable cycles then wait at most that many
allocations longer; nothing else changes."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The cyclic collector's young threshold raised for the block, then restored."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], YOUNG_COLLECTION_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _run_events(env: simpy.Environment) -> None:
    with fewer_collections():
        env.run()


def simulate(
    run: ResolvedRun,
    trace: Trace,
    progress: ProgressFn | None = None,
    spool_dir: Path | None = None,
    part: SplitPart | None = None,
) -> SimOutput:
    """Run the simulation. With `spool_dir` (an existing, empty directory) the requests and
    timeline tables are streamed to `requests.parquet` and `timeline.parquet` there while
    the run goes, instead of held in memory (`infsim.metrics.sink`). With `part`, one
    worker's share of a run split by replica (`infsim.sim.split_run`): its router replays
    the serial assignment, and only the requests it owns are submitted."""
    wall0 = time.perf_counter()
    env = simpy.Environment()
    recorder = Recorder(spool_dir) if part is None else part.recorder(env, spool_dir)
    fast = run.fast_forward
    limit = run.workload.max_concurrency
    client = ClosedLoopClient(env, limit) if limit is not None else None
    has_prefix_ids = _has_prefix_ids(run, trace)
    cost_models: dict[str, CostModel] = {}  # one per pool, built with its first replica
    speculators: list[Speculator] = []  # acceptance draws: one stream per replica
    router = build_router(run.router, run.seed) if part is None else part.router

    total = trace.num_requests if part is None else part.num_requests
    ended = _request_ends(env, recorder, client, progress, trace.duration_s, total)

    disagg = None
    if run.disaggregation is not None:  # xPyD: sim/disagg.py
        disagg = Disaggregation(env, run, recorder, router, ended)
    scheduler_classes = disagg.scheduler_classes if disagg is not None else {}

    def make_replica(
        pool: ResolvedPool, replica_id: int, on_finished: Callable[[RequestState], None]
    ) -> Replica:
        model = cost_models.get(pool.name)
        if model is None:
            model = cost_models[pool.name] = _cost_model(pool)
        spec = pool.engine.speculative
        speculator = None
        if spec is not None:
            speculator = Speculator.from_spec(spec, run.seed, replica_id)
            speculators.append(speculator)
        cls = scheduler_classes.get(pool.name, ContinuousBatchingScheduler)
        sched = _scheduler(pool, has_prefix_ids, speculator, cls)
        if pool.replica.pipeline_parallel > 1:  # vLLM's batch queue
            pipe = build_pipeline_cost(pool.replica)
            return PipelinedReplica(env, replica_id, sched, model, recorder,
                                    on_finished=on_finished, pipeline=pipe,
                                    frontend=api_servers(pool))  # fmt: skip
        noise = None  # with PP > 1 refused by resolve()
        noise_spec = pool.speed_noise
        if noise_spec is not None and noise_spec.cv > 0:
            noise = SpeedNoise(noise_spec.cv, noise_spec.correlation_s, run.seed,
                               replica_id)  # fmt: skip
        # Disaggregated pools run synchronously (resolve() says so in the resolved scenario).
        async_on = bool(pool.engine.async_scheduling) and disagg is None
        lag = None
        if pool.engine.async_output_processing:  # vLLM V0 (resolve() says when)
            lag = OutputLag(pool.replica.step_overhead, pool.replica.num_workers)
        return Replica(env, replica_id, sched, model, recorder, fast, on_finished=on_finished,
                       noise=noise, async_scheduling=async_on, frontend=api_servers(pool),
                       egress=disagg is None, output_lag=lag)  # fmt: skip

    plan = FleetPlan(
        list(run.pools),
        num_requests=trace.num_requests if part is None else part.num_requests,
        seed=run.seed,
        autoscaling=run.autoscaling,
        failures=run.failures,
    )
    wiring = FleetWiring(
        recorder,
        router,
        disagg.wrap(make_replica) if disagg is not None else make_replica,
        on_finished=ended,
        on_rejected=ended,
    )
    fleet = Fleet(env, plan, wiring)
    if part is not None:
        part.attach(fleet)
    dispatch = disagg.submit if disagg is not None else fleet.submit
    owned = None if part is None else part.owned
    env.process(_arrivals(env, run, trace, dispatch, recorder, ended, client, owned))
    if run.failures is not None or run.autoscaling is not None:  # stall watchdog
        env.process(_watchdog(env, trace.num_requests, recorder))
    _run_events(env)
    recorder.finish()
    simulated_s = recorder.latest_finish_s()
    simulated_s = max(simulated_s, float(trace.arrival_s[-1]) if trace.num_requests else 0.0)
    num_events = recorder.num_requests + recorder.num_rows
    record = fleet.finish(simulated_s)
    spec_run = None
    if speculators:
        draft_s = [
            m.draft_time_s for m in cost_models.values() if isinstance(m, SpeculativeCostModel)
        ]
        spec_run = collect(speculators, sum(draft_s))
    wall_s = time.perf_counter() - wall0
    disagg_run = disagg.run if disagg is not None else None
    return SimOutput(recorder, wall_s, simulated_s, num_events, record, spec_run, disagg_run)


def _arrivals(
    env: simpy.Environment,
    run: ResolvedRun,
    trace: Trace,
    dispatch: Callable[[RequestState], bool],
    recorder: Recorder,
    ended: Callable[[RequestState], None],
    client: ClosedLoopClient | None,
    owned: Sequence[bool] | None = None,
) -> Generator[simpy.Event, Any, None]:
    """Send the trace's requests: at their arrival times (open loop) or when a client slot
    frees (closed loop); the send time is the zero of TTFT and E2E. The replica's API
    server (sim/replica.py) takes it from there. `dispatch` (the fleet's gateway) returns
    False for a request rejected for good, which then `ended`. With `owned` (a split run's
    part) only the rows it marks are sent; the others still pass their arrival time and
    their prefix keys, so events and key numbering are those of the whole run."""
    keyer = None
    if run.prefix_block_size_tokens is not None and trace.hash_block_size_tokens:
        keyer = BlockKeyer(trace.hash_block_size_tokens, run.prefix_block_size_tokens,
                           keying_kernels())  # fmt: skip
    rows = _trace_rows(trace, with_hash_ids=keyer is not None)

    def submit(req: RequestState) -> None:
        if not dispatch(req):
            ended(req)

    open_loop = client is None
    for index, rid, arrival, prompt, output, prio, hash_ids in rows:
        if arrival > env.now:
            yield urgent_event(env, arrival - env.now)
        if not open_loop:
            yield from client.acquire()
            arrival = env.now
        keys = None
        if keyer is not None and hash_ids is not None:  # (no keys for empty ids)
            keys = keyer.keys(hash_ids, prompt + output)
        if owned is not None and not owned[index]:
            continue
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
        submit(req)


ARRIVAL_CHUNK = 4096
"""Trace rows turned into Python values at a time: memory for the arrivals stays flat in
the trace length (a million rows as Python tuples would hold ~300 MB)."""


def _trace_rows(trace: Trace, with_hash_ids: bool) -> Iterator[tuple]:
    """(index, request id, arrival, prompt, output, priority, hash ids or None) per row, in
    trace order, converted chunk by chunk; a row's hash ids are an int64 array (a view of
    the chunk's ids: no Python int per id), None for a null."""
    total = trace.num_requests
    columns = (trace.request_id, trace.arrival_s, trace.num_prompt_tokens,
               trace.num_output_tokens, trace.priority)  # fmt: skip
    hash_ids = trace.table.column("prefix_hash_ids")
    for start in range(0, total, ARRIVAL_CHUNK):
        stop = min(start + ARRIVAL_CHUNK, total)
        hashes: Iterable[np.ndarray | None] = repeat(None, stop - start)
        if with_hash_ids:
            chunk = hash_ids.slice(start, stop - start).combine_chunks()
            ids = arrays.to_numpy(chunk.values)  # int64 (no null ids: Trace checks)
            bounds = pairwise(arrays.to_numpy(chunk.offsets).tolist())  # rows', into `ids`
            hashes = [ids[a:b] for a, b in bounds]
            if chunk.null_count:  # (a null's offsets may still span values)
                for i in np.flatnonzero(arrays.to_numpy(chunk.is_null())).tolist():
                    hashes[i] = None
        yield from zip(
            range(start, stop), *(c[start:stop].tolist() for c in columns), hashes, strict=True
        )


STALL_CHECK_S = 3600.0
STALL_LIMIT_S = 7 * 86400.0
"""A run whose outstanding requests see no request end for this long (a simulated week:
no request waits that long in any deployment that serves) cannot make progress."""


def _watchdog(
    env: simpy.Environment, total: int, recorder: Recorder
) -> Generator[simpy.Event, Any, None]:
    """End a run that cannot make progress (a fleet whose replicas are lost or scaled away
    faster than they start: simulated time would grow without bound) with an error that
    says so. Reads only; checks once per simulated hour."""
    last_done, since = recorder.num_done, env.now
    while recorder.num_done < total:
        yield env.timeout(STALL_CHECK_S)
        outstanding = recorder.num_requests - recorder.num_done
        if recorder.num_done != last_done or not outstanding:
            last_done, since = recorder.num_done, env.now
            continue
        if env.now - since >= STALL_LIMIT_S:
            raise InputError(
                f"the simulation made no progress: no request ended in {STALL_LIMIT_S / 86400:g} "
                f"simulated days (t = {since:,.0f} s to {env.now:,.0f} s) while "
                f"{outstanding:,} were outstanding ({recorder.num_done:,} of {total:,} done). "
                "Replicas are lost or scaled away faster than they can start and serve: "
                "check failures (replica_mtbf_s, spot_interruptions_per_hour, events) "
                "against the cold start, and the autoscaling bounds"
            )


def _request_ends(
    env: simpy.Environment,
    recorder: Recorder,
    client: ClosedLoopClient | None,
    progress: ProgressFn | None,
    span_s: float,
    total: int,
) -> Callable[[RequestState], None]:
    """The one place a client request's end is counted (finished, rejected or failed):
    the recorder's count, the closed-loop client's slot, the progress report."""
    report = None if progress is None else ProgressReport(progress, span_s, total)

    def ended(_req: RequestState) -> None:
        recorder.on_request_end()
        if client is not None:
            client.release()
        if report is not None:
            report(env.now, recorder.num_done)

    return ended


class ProgressReport:
    """Calls `progress(simulated s, requests ended)` as requests end, at most every 1 % of
    the trace span (or of the simulated time so far, once past it) and at the last one.
    Driven by the ends themselves, not by a simpy process of its own: a watcher that
    scheduled events would move the run's end time and so its outputs (the fleet
    timeline's closing row), and a run must give the same outputs shown or quiet."""

    def __init__(self, progress: ProgressFn, span_s: float, total: int) -> None:
        self.progress = progress
        self.span_s = float(span_s)
        self.total = total
        self.next_s = 0.0

    def __call__(self, now_s: float, num_done: int) -> None:
        if now_s >= self.next_s or num_done >= self.total:
            self.progress(now_s, num_done)
            self.next_s = now_s + max(self.span_s, now_s, 1e-3) / 100
