"""Prefill/decode disaggregation (xPyD) in simulated time. Wiring only: the policies are
`infsim.disagg.policies`, the two schedulers `infsim.disagg.schedulers`.

    arrival ─► conditional? ─ local ─► least-loaded decode replica (prefills it itself)
                   │ remote
                   ▼
         router over prefill (+ mixed) replicas ─► prefill replica runs a max_tokens=1
         copy (chunked prefill as usual); its KV blocks stay held
                   │ first token sampled
                   ▼
         least-loaded decode replica (KV used + offered blocks): `offer` → waits for
         blocks (decode admission queue) → blocks reserved at a step boundary
                   │
                   ▼
         sender's link (num_streams slots, FIFO) → transfer (α + bytes/β, or the exposed
         part when layer-pipelined) → prefill blocks freed; the first token reaches the
         client (TTFT); the request joins the decode queue with its prompt computed

TTFT is client-visible: the first token is sampled by the prefill replica but reaches
the client through the decode replica once the KV has arrived (vLLM's P/D proxy streams
the decode instance's output; SGLang's decode server returns the prefill's token with
the transfer). The prefill's own sampling time is `prefill_end_s`.

Determinism: everything happens in event order; decode placement and routing break ties
by replica index; no randomness here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from infsim.core.request import RequestState, Status
from infsim.disagg.outputs import request_columns
from infsim.disagg.policies import least_loaded, prefill_locally, transfer_link, transfer_time_s
from infsim.disagg.records import DisaggRun, Handoff
from infsim.disagg.schedulers import DecodeScheduler, PrefillScheduler
from infsim.disagg.spec import DisaggregationSpec
from infsim.metrics.recorder import Recorder
from infsim.parallel.network import Link
from infsim.routing.base import Router
from infsim.scenario.pools import ResolvedPool
from infsim.scenario.run import ResolvedRun
from infsim.sim.cluster import ReplicaSetView
from infsim.sim.replica import Replica

ROLE_SCHEDULERS = {"prefill": PrefillScheduler, "decode": DecodeScheduler}


class Disaggregation:
    """The request flow of the module docstring over the fleet's replicas."""

    def __init__(
        self,
        env: simpy.Environment,
        run: ResolvedRun,
        recorder: Recorder,
        router: Router,
        on_finished: Callable[[RequestState], None],
    ) -> None:
        self.env = env
        assert run.disaggregation is not None
        self.spec: DisaggregationSpec = run.disaggregation
        self.recorder = recorder
        # each flushed chunk of the requests table gets its requests' path columns
        recorder.extra_columns = lambda reqs: request_columns(self.run, [r.index for r in reqs])
        self.router = router
        self.on_client_finished = on_finished
        pools = run.pools
        self._pool = {p.name: p for p in pools}
        self.scheduler_classes = {
            p.name: ROLE_SCHEDULERS[p.spec.role] for p in pools if p.spec.role in ROLE_SCHEDULERS
        }
        self.front: list[Replica] = []  # prefill and mixed replicas: arrivals go here
        self.front_view = ReplicaSetView(self.front)
        self.decode: list[Replica] = []
        self.by_id: dict[int, Replica] = {}
        self._replica_pool: dict[int, ResolvedPool] = {}  # by replica id
        self.streams: dict[int, simpy.Resource] = {}  # sending replica id → link slots
        self.copies: dict[int, RequestState] = {}  # request index → prefill's copy
        self.originals: dict[int, RequestState] = {}  # request index → client request
        self.run = DisaggRun(self.spec, {}, [(0.0, 0, 0, 0, 0)], {}, {})
        self.num_queued = self.num_transferring = self.num_awaiting = self.num_held = 0

    # -- construction (called through the fleet's make_replica) -----------------------
    def wrap(self, make_replica: Callable[..., Replica]) -> Callable[..., Replica]:
        """`make_replica` with the role's completion callback and registration."""

        def make(
            pool: ResolvedPool, replica_id: int, on_finished: Callable[[RequestState], None]
        ) -> Replica:
            role = pool.spec.role
            if role == "prefill":
                on_finished = self._prefill_done
            replica = make_replica(pool, replica_id, on_finished)
            self._register(replica, role, self._pool[pool.name])
            return replica

        return make

    def _register(self, replica: Replica, role: str, pool: ResolvedPool) -> None:
        rid = replica.replica_id
        self.by_id[rid] = replica
        self._replica_pool[rid] = pool
        self.run.roles[rid] = role
        self.run.pool_of[rid] = pool.name
        if role == "decode":
            self.decode.append(replica)
            replica.scheduler.on_reserved = self._reserved
        else:
            self.front.append(replica)
        if role == "prefill":
            self.streams[rid] = simpy.Resource(self.env, capacity=self.spec.num_streams)

    # -- arrivals ---------------------------------------------------------------------
    def submit(self, req: RequestState) -> bool:
        """Route an arriving request (False: rejected for good)."""
        reasons = [d.scheduler.rejection_reason(req) for d in self.decode]
        if all(reasons):
            req.status = Status.REJECTED
            req.reject_reason = f"decode pool: {reasons[0]}"
            return False
        if self.spec.conditional is not None:
            local = self._local_decode(req)
            if local is not None:
                self.run.handoffs[req.index] = Handoff("local", decode_replica_id=local.replica_id)
                return local.submit(req)
        replica = self.front[self.router.route(req, self.front_view, self.env.now)]
        if self.run.roles[replica.replica_id] != "prefill":
            self.run.handoffs[req.index] = Handoff("mixed")
            return replica.submit(req)
        copy = RequestState(
            index=req.index,
            request_id=req.request_id,
            arrival_s=req.arrival_s,
            num_prompt_tokens=req.num_prompt_tokens,
            num_output_tokens=1,  # max_tokens=1, as the P/D proxy asks the prefill
            priority=req.priority,
            block_keys=req.block_keys,
        )
        if not replica.submit(copy):
            req.status, req.reject_reason = Status.REJECTED, f"prefill pool: {copy.reject_reason}"
            return False
        req.replica_id = replica.replica_id
        self.copies[req.index] = copy
        self.originals[req.index] = req
        self.run.handoffs[req.index] = Handoff("remote", prefill_replica_id=replica.replica_id)
        return True

    def _local_decode(self, req: RequestState) -> Replica | None:
        """The decode replica to prefill `req` locally, or None (conditional policy)."""
        cached = [0] * len(self.decode)
        if req.block_keys:
            for i, d in enumerate(self.decode):
                kv = d.scheduler.kv
                cached[i] = kv.num_cached_prefix_blocks(req.block_keys) * kv.block_size
        best = max(cached)
        num_cached = min(best, req.num_prompt_tokens)
        if not prefill_locally(req.num_prompt_tokens, num_cached, self.spec.conditional):
            return None
        pairs = zip(self.decode, cached, strict=True)
        loads = [self._decode_load(d) if c == best else 2.0 for d, c in pairs]
        return self.decode[least_loaded(loads)]

    def _decode_load(self, replica: Replica) -> float:
        sched = replica.scheduler
        kv = sched.kv
        used = kv.num_total_blocks - kv.num_free_blocks + sched.num_remote_blocks()
        return used / kv.num_total_blocks

    # -- prefill → decode -------------------------------------------------------------
    def _prefill_done(self, copy: RequestState) -> None:
        """A prefill replica sampled `copy`'s first token (its KV blocks stay held)."""
        now = self.env.now
        req = self.originals.pop(copy.index)
        sender = self.by_id[copy.replica_id]
        hand = self.run.handoffs[req.index]
        hand.prefill_end_s = copy.finish_s
        req.first_scheduled_s = copy.first_scheduled_s
        req.num_cached_tokens = copy.num_cached_tokens
        req.num_preemptions += copy.num_preemptions
        if req.num_output_tokens == 1:  # nothing to decode: the prefill's answer is it
            self.copies.pop(req.index)
            sender.scheduler.release(copy)
            req.num_computed_tokens = copy.num_computed_tokens
            req.num_output_done = 1
            req.first_token_s = req.last_emit_s = req.finish_s = copy.finish_s
            req.status = Status.FINISHED
            self.on_client_finished(req)
            return
        self.num_held += 1
        decode = self.decode[least_loaded([self._decode_load(d) for d in self.decode])]
        hand.decode_replica_id = req.replica_id = decode.replica_id
        self.num_awaiting += 1
        self._row(now)
        decode.scheduler.offer(req, now)
        if decode.scheduler.has_work():  # busy: a fast-forwarded run stops at this step
            decode.wake()

    def _reserved(self, req: RequestState, now: float) -> None:
        """A decode replica allocated `req`'s blocks: queue its transfer."""
        self.num_awaiting -= 1
        self.run.handoffs[req.index].reserved_s = now
        self.env.process(self._transfer(req))

    def _transfer(self, req: RequestState) -> Generator[simpy.Event, Any, None]:
        env = self.env
        copy = self.copies.pop(req.index)
        sender = self.by_id[copy.replica_id]
        hand = self.run.handoffs[req.index]
        link = self._link(sender.replica_id, hand.decode_replica_id)
        cfg = self._replica_pool[sender.replica_id].replica
        nbytes = req.num_prompt_tokens * cfg.model.kv_bytes_per_token(cfg.kv_cache_precision)
        duration_s = transfer_time_s(
            nbytes,
            link,
            num_streams=self.spec.num_streams,
            num_layers=cfg.model.num_layers,
            layer_pipelined=self.spec.layer_pipelined,
            prefill_span_s=copy.finish_s - copy.first_scheduled_s,
        )
        with self.streams[sender.replica_id].request() as slot:
            queued = not slot.triggered  # every stream of the sender is busy
            self.num_queued += queued
            self._row(env.now)
            yield slot
            self.num_queued -= queued
            self.num_transferring += 1
            hand.transfer_start_s = env.now
            self._row(env.now)
            yield env.timeout(duration_s)
        self.num_transferring -= 1
        self.num_held -= 1
        hand.transfer_end_s = env.now
        hand.kv_bytes = nbytes
        self._row(env.now)
        sender.scheduler.release(copy)
        if sender.scheduler.has_work():  # freed blocks may admit its waiting prompts
            sender.wake()
        req.num_computed_tokens = req.num_prompt_tokens
        req.num_output_done = 1
        req.first_token_s = req.last_emit_s = env.now
        decode = self.by_id[hand.decode_replica_id]
        decode.num_outstanding_tokens += req.num_prompt_tokens + req.num_output_tokens
        decode.scheduler.on_received(req)
        decode.wake()

    def _link(self, prefill_id: int, decode_id: int) -> Link:
        p, d = self._replica_pool[prefill_id], self._replica_pool[decode_id]
        key = f"{p.name}→{d.name}"
        link = self.run.links.get(key)
        if link is None:
            link = transfer_link(self.spec, p.gpu, p.gpus_per_replica, d.gpus_per_replica)
            self.run.links[key] = link
        return link

    def _row(self, now: float) -> None:
        row = (now, self.num_queued, self.num_transferring, self.num_awaiting, self.num_held)
        self.run.timeline.append(row)
