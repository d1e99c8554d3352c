"""Hypothesis: scheduler + KV invariants hold with speculative decoding and random
acceptance (pure objects, unit step times, no SimPy).

Random small workloads run with k drafts, a random acceptance model (0 and 1 included),
an optional disable_by_batch_size, tiny KV pools (so preemption happens) and, half the
time, prefix caching over shared key chains. After every step: KV blocks are conserved
(free + used == total, ref counts match holders), every running request's blocks cover
its computed tokens, and a request that sampled has exactly one token left to compute. At
the end every request finished once with all its output tokens or was rejected. The
fast-forward helpers (used while drafting is switched off) reproduce stepping exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from infsim.core.request import RequestState, Status
from infsim.kvcache.counter import BlockCounter
from infsim.kvcache.prefix_cache import PrefixCachingKV
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig
from infsim.speculative.speculator import Speculator
from tests.properties.test_prop_scheduler_loop import assert_summary

BLOCK_SIZE = 4


@dataclass(frozen=True)
class Req:
    arrival_step: int
    prompt: int
    output: int
    chain: int


@dataclass(frozen=True)
class Setup:
    reqs: list[Req]
    blocks: int
    budget: int
    max_seqs: int
    chunked: bool
    prefix: bool
    k: int
    rate: float
    decay: float
    disable: int | None
    seed: int
    output_keys: bool = True  # prefix keys cover prompt and output tokens (sessions do)


setup_strategy = st.builds(
    Setup,
    reqs=st.lists(
        st.builds(
            Req,
            arrival_step=st.integers(0, 10),
            prompt=st.integers(1, 20),
            output=st.integers(1, 16),
            chain=st.integers(0, 2),
        ),
        min_size=1,
        max_size=8,
    ).map(lambda xs: sorted(xs, key=lambda r: r.arrival_step)),
    blocks=st.integers(4, 24),
    budget=st.integers(4, 40),
    max_seqs=st.integers(1, 6),
    chunked=st.booleans(),
    prefix=st.booleans(),
    k=st.integers(1, 4),
    rate=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    decay=st.sampled_from([1.0, 0.8]),
    disable=st.sampled_from([None, None, 1, 2]),
    seed=st.integers(0, 3),
)


def build(setup: Setup) -> tuple[ContinuousBatchingScheduler, list[RequestState]]:
    config = SchedulerConfig(
        max_num_seqs=setup.max_seqs,
        max_num_batched_tokens=setup.budget,
        enable_chunked_prefill=setup.chunked,
    )
    kv = (PrefixCachingKV if setup.prefix else BlockCounter)(setup.blocks, BLOCK_SIZE)
    marginals = np.cumprod(setup.rate * setup.decay ** np.arange(setup.k))
    spec = Speculator(setup.k, marginals, np.random.default_rng(setup.seed), setup.disable)
    reqs = []
    for i, r in enumerate(setup.reqs):
        covered = r.prompt + r.output if setup.output_keys else r.prompt
        keys = [r.chain * 1000 + j for j in range(covered // BLOCK_SIZE)]
        reqs.append(RequestState(index=i, request_id=i, arrival_s=float(r.arrival_step),
                                 num_prompt_tokens=r.prompt, num_output_tokens=r.output,
                                 block_keys=keys or None))  # fmt: skip
    return ContinuousBatchingScheduler(config, kv, spec), reqs


def check(sched: ContinuousBatchingScheduler, reqs: list[RequestState]) -> None:
    kv = sched.kv
    held = [r for r in reqs if r.num_blocks]
    assert all(r.status is Status.RUNNING for r in held)
    if isinstance(kv, BlockCounter):
        assert kv.num_free_blocks + sum(r.num_blocks for r in held) == kv.num_total_blocks
    else:
        referenced = sum(1 for c in kv.ref_cnt if c > 0)
        assert kv.num_free_blocks + referenced == kv.num_total_blocks
        counts = [0] * kv.num_total_blocks
        for r in held:
            for b in r.block_ids:
                counts[b] += 1
        assert counts == kv.ref_cnt
    for r in sched.running:
        assert r.num_blocks * BLOCK_SIZE >= r.num_computed_tokens
        assert r.num_computed_tokens <= r.num_tokens


def run_loop(setup: Setup, *, fast: bool) -> list[RequestState]:
    sched, reqs = build(setup)
    pending, now, finished = list(reqs), 0.0, []
    for _ in range(5_000):
        while pending and pending[0].arrival_s <= now:
            req = pending.pop(0)
            if reason := sched.rejection_reason(req):
                req.status, req.reject_reason = Status.REJECTED, reason
            else:
                sched.add(req)
        if not sched.has_work():
            if not pending:
                break
            now = pending[0].arrival_s
            continue
        horizon = max(1, int((pending[0].arrival_s if pending else 1e9) - now))
        assert_summary(sched, now)
        if fast and (k := sched.plan_decode_run(now)):
            out = sched.apply_decode_run(min(k, horizon), now + min(k, horizon))
            now += min(k, horizon)
        else:
            batch = sched.schedule(now)
            if not batch.requests:
                assert batch.num_preempted
                continue
            assert batch.num_batched_tokens <= setup.budget
            assert batch.draft_k in (0, setup.k)
            sampled = [r for r, n in zip(batch.requests, batch.num_new_tokens, strict=True)
                       if r.num_computed_tokens + n >= r.num_tokens]  # fmt: skip
            out = sched.on_batch_done(batch, now, now + 1.0)
            assert out.num_draft_tokens == batch.num_spec_tokens
            for r in sampled:  # rolled back past rejected drafts: one token left to compute
                assert r.status is Status.FINISHED or r.num_tokens - r.num_computed_tokens == 1
            now += 1.0
        finished.extend(r.request_id for r in out.finished)
        check(sched, reqs)
    else:
        raise AssertionError("loop did not terminate")
    assert len(finished) == len(set(finished))
    for r in reqs:
        if r.status is Status.FINISHED:
            assert r.num_output_done == r.num_output_tokens
            assert r.num_blocks == 0
        else:
            assert r.status is Status.REJECTED
    assert sched.kv.num_free_blocks == sched.kv.num_total_blocks
    return reqs


@settings(max_examples=200, deadline=None)
@given(setup_strategy)
def test_blocks_conserved_and_requests_complete_with_random_acceptance(setup: Setup) -> None:
    run_loop(setup, fast=False)


# Found by Hypothesis: a fast-forwarded run allocates several steps ahead; caching must
# still register the output blocks those steps fill (keys cover prompt and output here).
# Generated cases key prompts only, as tests/properties/test_prop_scheduler_loop.py does:
# with output-keyed blocks the core fast-forward can evict and register in another order
# than stepping (it allocates a run's steps request by request), which predates
# speculation and is reported, not fixed, here.
REGRESSION = Setup(
    reqs=[Req(0, 1, 1, 0), Req(0, 1, 1, 0), Req(0, 1, 4, 0), Req(0, 1, 3, 0),
          Req(4, 1, 1, 0), Req(4, 5, 1, 0)],
    blocks=4, budget=5, max_seqs=3, chunked=False, prefix=True, k=1, rate=0.0, decay=1.0,
    disable=1, seed=0,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(setup_strategy.map(lambda s: replace(s, output_keys=False)))
@example(REGRESSION)
def test_fast_forward_matches_stepping_with_speculation(setup: Setup) -> None:
    slow, fast = run_loop(setup, fast=False), run_loop(setup, fast=True)
    for a, b in zip(slow, fast, strict=True):
        assert (a.status, a.first_token_s, a.finish_s, a.num_preemptions) == (
            b.status, b.first_token_s, b.finish_s, b.num_preemptions)  # fmt: skip
