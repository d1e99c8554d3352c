"""Hypothesis: invariants of the scheduler + KV manager driven step by step (no SimPy).

Random small workloads (a few requests, tiny KV pools so preemption and eviction happen,
shared key chains so prefix hits happen) go through a hand-written engine loop with unit
step times. After every step: blocks are conserved, ref counts are non-negative, cached
prefixes are within prompts, and at the end every request finished or was rejected
exactly once with all its output tokens. A second loop uses the decode fast-forward
helpers and must reproduce the first loop's per-request times exactly. Before every
decision, the scheduler's summary of the running set (decode limit, Σ computed tokens,
kept by the pass that applied the last step or run) must equal a fresh pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.core.request import RequestState, Status
from infsim.kvcache.counter import BlockCounter
from infsim.kvcache.prefix_cache import PrefixCachingKV
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig

BLOCK_SIZE = 4


@dataclass(frozen=True)
class Spec:
    arrival_step: int
    prompt: int
    output: int
    priority: int
    chain: int  # which shared key chain (prefix family) the prompt uses


@dataclass(frozen=True)
class Setup:
    specs: list[Spec]
    blocks: int
    budget: int
    max_seqs: int
    chunked: bool
    threshold: int
    policy: str
    prefix: bool


specs_strategy = st.lists(
    st.builds(
        Spec,
        arrival_step=st.integers(0, 12),
        prompt=st.integers(1, 24),
        output=st.integers(1, 12),
        priority=st.integers(0, 2),
        chain=st.integers(0, 2),
    ),
    min_size=1,
    max_size=10,
).map(lambda xs: sorted(xs, key=lambda s: s.arrival_step))

setup_strategy = st.builds(
    Setup,
    specs=specs_strategy,
    blocks=st.integers(3, 24),
    budget=st.integers(4, 40),
    max_seqs=st.integers(1, 6),
    chunked=st.booleans(),
    threshold=st.sampled_from([0, 0, 3, 7]),
    policy=st.sampled_from(["fcfs", "priority"]),
    prefix=st.booleans(),
)


def build(
    setup: Setup, cls: type = ContinuousBatchingScheduler, keyed_output: bool = False
) -> tuple[ContinuousBatchingScheduler, list[RequestState]]:
    """A scheduler of class `cls` over the setup's KV pool and its requests; prefix keys
    cover the prompt, or prompt + output (`keyed_output`: output-covering keys)."""
    config = SchedulerConfig(
        max_num_seqs=setup.max_seqs,
        max_num_batched_tokens=setup.budget,
        enable_chunked_prefill=setup.chunked,
        long_prefill_token_threshold=setup.threshold,
        scheduling_policy=setup.policy,
    )
    kv_cls = PrefixCachingKV if setup.prefix else BlockCounter
    sched = cls(config, kv_cls(setup.blocks, BLOCK_SIZE))
    reqs = []
    for i, s in enumerate(setup.specs):
        keyed = s.prompt + s.output if keyed_output else s.prompt
        # Keys of chain c: block j -> c * 1000 + j, so equal chains share prefixes.
        keys = [s.chain * 1000 + j for j in range(keyed // BLOCK_SIZE)] or None
        reqs.append(
            RequestState(
                index=i,
                request_id=i,
                arrival_s=float(s.arrival_step),
                num_prompt_tokens=s.prompt,
                num_output_tokens=s.output,
                priority=s.priority,
                block_keys=keys if setup.prefix else None,
            )
        )
    return sched, reqs


def check_kv(sched: ContinuousBatchingScheduler, reqs: list[RequestState]) -> None:
    kv = sched.kv
    held = [r for r in reqs if r.num_blocks]
    assert all(r.status is Status.RUNNING for r in held)
    assert 0 <= kv.num_free_blocks <= kv.num_total_blocks
    if isinstance(kv, BlockCounter):
        assert kv.num_free_blocks + sum(r.num_blocks for r in held) == kv.num_total_blocks
    else:
        assert all(c >= 0 for c in kv.ref_cnt)
        referenced = sum(1 for c in kv.ref_cnt if c > 0)
        assert kv.num_free_blocks + referenced == kv.num_total_blocks
        assert all(kv.ref_cnt[b] == 0 for b in kv.free_queue)
        # ref counts equal the number of holders of each block
        counts = [0] * kv.num_total_blocks
        for r in held:
            assert len(r.block_ids) == r.num_blocks
            for b in r.block_ids:
                counts[b] += 1
        assert counts == kv.ref_cnt
    for r in sched.running:
        assert r.num_blocks * BLOCK_SIZE >= r.num_computed_tokens
        assert r.num_computed_tokens <= r.num_tokens
    for r in reqs:
        assert r.num_cached_tokens <= r.num_prompt_tokens - 1 or r.num_cached_tokens == 0
        assert r.num_cached_tokens % BLOCK_SIZE == 0


def assert_summary(sched: ContinuousBatchingScheduler, now: float) -> None:
    """What the last step or run left (the decode limit, Σ computed tokens) is what a pass
    over the running requests finds."""
    assert sched._decode_limit(now) == sched._scan_decode_limit(now)
    assert sched.decode_run_context_tokens() == sum(r.num_computed_tokens for r in sched.running)


def run_loop(setup: Setup, *, fast: bool) -> list[RequestState]:
    """Engine loop with step time 1; fast=True uses the decode fast-forward helpers."""
    sched, reqs = build(setup)
    pending = list(reqs)
    now = 0.0
    finished_seen: list[int] = []
    for _ in range(10_000):
        while pending and pending[0].arrival_s <= now:
            req = pending.pop(0)
            reason = sched.rejection_reason(req)
            if reason:
                req.status = Status.REJECTED
                req.reject_reason = reason
            else:
                sched.add(req)
        if not sched.has_work():
            if not pending:
                break
            now = pending[0].arrival_s
            continue
        next_arrival = pending[0].arrival_s if pending else float("inf")
        assert_summary(sched, now)
        k = sched.plan_decode_run(now) if fast else 0
        if k:
            # Arrivals at integer times; a run may not go past the next one.
            k = int(min(k, max(1, next_arrival - now)))
            out = sched.apply_decode_run(k, now + k)
            now += k
        else:
            batch = sched.schedule(now)
            if not batch.requests:
                # A running request preempted itself: vLLM ends that step empty.
                assert batch.num_preempted, "work but nothing schedulable"
                check_kv(sched, reqs)
                continue
            assert batch.num_batched_tokens <= setup.budget
            assert len(sched.running) <= setup.max_seqs
            assert len(set(map(id, batch.requests))) == batch.num_seqs
            if batch.num_preempted:
                assert batch.num_admitted == 0
            kk = sched.decode_run_limit(batch, now) if fast else 0
            if kk > 1:
                kk = int(min(kk, max(1, next_arrival - now)))
                out = sched.apply_decode_run(kk, now + kk)
                now += kk
            else:
                out = sched.on_batch_done(batch, now, now + 1.0)
                now += 1.0
        finished_seen.extend(r.request_id for r in out.finished)
        check_kv(sched, reqs)
    else:
        raise AssertionError("loop did not terminate")
    # Every request finished exactly once or was rejected (never both).
    assert len(finished_seen) == len(set(finished_seen))
    for r in reqs:
        if r.status is Status.FINISHED:
            assert finished_seen.count(r.request_id) == 1
            assert r.num_output_done == r.num_output_tokens
            assert r.arrival_s <= r.first_scheduled_s < r.first_token_s <= r.finish_s
            assert r.num_blocks == 0
        else:
            assert r.status is Status.REJECTED
            assert r.reject_reason
            assert r.request_id not in finished_seen
    assert sched.kv.num_free_blocks == sched.kv.num_total_blocks
    return reqs


@settings(max_examples=200, deadline=None)
@given(setup_strategy)
def test_scheduler_loop_invariants(setup: Setup) -> None:
    run_loop(setup, fast=False)


@settings(max_examples=200, deadline=None)
@given(setup_strategy)
def test_decode_fast_forward_matches_stepping(setup: Setup) -> None:
    slow = run_loop(setup, fast=False)
    fast = run_loop(setup, fast=True)
    for a, b in zip(slow, fast, strict=True):
        assert (a.status, a.first_scheduled_s, a.first_token_s, a.finish_s) == (
            b.status,
            b.first_scheduled_s,
            b.first_token_s,
            b.finish_s,
        )
        assert (a.num_preemptions, a.num_cached_tokens) == (b.num_preemptions, b.num_cached_tokens)
