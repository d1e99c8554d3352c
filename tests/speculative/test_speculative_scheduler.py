"""The continuous-batching scheduler with a speculator: token counts, rollback, emission,
switch-off and the fast-forward guard. Pure objects, unit step times, no SimPy.

Acceptance is made deterministic with marginals of 1 (every draft accepted) or 0 (every
draft rejected), so each test can state the exact steps.
"""

from __future__ import annotations

import numpy as np

from infsim.core.batch import Batch
from infsim.core.request import RequestState, Status
from infsim.kvcache.counter import BlockCounter
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig
from infsim.speculative.speculator import Speculator


def speculator(k: int, rate: float, disable_by_batch_size: int | None = None) -> Speculator:
    marginals = np.full(k, rate)  # rate 0 or 1: deterministic
    return Speculator(k, marginals, np.random.default_rng(0), disable_by_batch_size)


def scheduler(
    spec: Speculator | None, *, budget: int = 64, blocks: int = 100, block_size: int = 4
) -> ContinuousBatchingScheduler:
    config = SchedulerConfig(max_num_seqs=8, max_num_batched_tokens=budget)
    return ContinuousBatchingScheduler(config, BlockCounter(blocks, block_size), spec)


def request(i: int, prompt: int, output: int) -> RequestState:
    return RequestState(index=i, request_id=i, arrival_s=0.0, num_prompt_tokens=prompt,
                        num_output_tokens=output)  # fmt: skip


def step(sched: ContinuousBatchingScheduler, now: float) -> tuple[Batch, list[RequestState]]:
    batch = sched.schedule(now)
    return batch, sched.on_batch_done(batch, now, now + 1.0).finished


def test_all_accepted_finishes_in_ceil_n_minus_1_over_k_plus_1_decode_steps() -> None:
    # k = 3, α = 1: prompt 8, 10 output tokens. Step 1 prefills and emits token 1; each
    # decode step verifies 1 + 3 tokens and emits 4: tokens 5, 9, then 10 (the last step
    # accepts 3 but only 1 token is left: the rest is discarded, as max_tokens does).
    # ceil((10 − 1) / 4) = 3 decode steps.
    sched = scheduler(speculator(3, 1.0))
    req = request(0, 8, 10)
    sched.add(req)
    b, _ = step(sched, 0.0)
    assert (b.num_new_tokens, b.num_spec_tokens, req.num_output_done) == ([8], 0, 1)
    emitted = []
    for t in range(1, 4):
        b, finished = step(sched, float(t))
        assert (b.num_new_tokens, b.num_spec_tokens, b.num_sampled) == ([4], 3, 1)
        emitted.append(req.num_output_done)
    assert emitted == [5, 9, 10]
    assert finished == [req]
    assert (req.status, req.first_token_s, req.finish_s) == (Status.FINISHED, 1.0, 4.0)
    assert sched.kv.num_free_blocks == sched.kv.num_total_blocks


def test_all_rejected_emits_one_token_per_step_and_rolls_back() -> None:
    # α = 0: each decode step verifies 4 tokens, accepts none, emits the target's token.
    sched = scheduler(speculator(3, 0.0))
    req = request(0, 8, 4)
    sched.add(req)
    step(sched, 0.0)
    for t in range(1, 4):
        computed = req.num_computed_tokens
        b, _ = step(sched, float(t))
        assert b.num_new_tokens == [4]
        # Rolled back: one more computed token, one emitted, KV holds the 3 extra slots.
        assert req.num_computed_tokens == computed + 1 or req.status is Status.FINISHED
    assert (req.num_output_done, req.finish_s) == (4, 4.0)


def test_rejected_slots_roll_back_but_blocks_stay() -> None:
    # Block size 4, prompt 7: after the prefill 7 tokens computed in 2 blocks. A verify of
    # 1 + 3 tokens needs slots 7..10 (3 blocks); all rejected → computed 8, 3 blocks held
    # (vLLM keeps them: the next verify rewrites those slots).
    sched = scheduler(speculator(3, 0.0), block_size=4)
    req = request(0, 7, 20)
    sched.add(req)
    step(sched, 0.0)
    assert (req.num_computed_tokens, req.num_blocks) == (7, 2)
    step(sched, 1.0)
    assert (req.num_computed_tokens, req.num_tokens, req.num_blocks) == (8, 9, 3)
    kv = sched.kv
    assert kv.num_free_blocks + req.num_blocks == kv.num_total_blocks


def test_token_budget_truncates_drafts() -> None:
    # Budget 6, two decoding requests, k = 3: the first gets 1 + 3, the second 1 + 1.
    sched = scheduler(speculator(3, 1.0), budget=6)
    a, b = request(0, 2, 20), request(1, 2, 20)
    sched.add(a)
    sched.add(b)
    step(sched, 0.0)  # both prefills (2 + 2 tokens)
    batch, _ = step(sched, 1.0)
    assert batch.num_new_tokens == [4, 2]
    assert (batch.num_batched_tokens, batch.num_spec_tokens, batch.num_sampled) == (6, 4, 2)
    assert (a.num_output_done, b.num_output_done) == (1 + 4, 1 + 2)


def test_prefill_rows_get_no_drafts() -> None:
    # A request still prefilling (or the step completing its prompt) is scheduled its
    # prompt tokens only; drafts start with its first decode step.
    sched = scheduler(speculator(2, 1.0), budget=5)
    req = request(0, 8, 5)
    sched.add(req)
    b, _ = step(sched, 0.0)
    assert (b.num_new_tokens, b.draft_k, b.num_spec_tokens) == ([5], 2, 0)
    b, _ = step(sched, 1.0)
    assert (b.num_new_tokens, b.num_spec_tokens, req.num_output_done) == ([3], 0, 1)
    b, _ = step(sched, 2.0)
    assert (b.num_new_tokens, b.num_spec_tokens, req.num_output_done) == ([3], 2, 4)


def test_disable_by_batch_size_switches_drafts_off_above_n() -> None:
    # disable_by_batch_size 2: with 3 running requests no drafts; once one finishes (2
    # running, not more than 2) drafts resume.
    sched = scheduler(speculator(2, 1.0, disable_by_batch_size=2))
    reqs = [request(0, 4, 2), request(1, 4, 9), request(2, 4, 9)]
    for r in reqs:
        sched.add(r)
    step(sched, 0.0)  # 3 prefills
    b, finished = step(sched, 1.0)
    assert (b.draft_k, b.num_new_tokens, b.num_spec_tokens) == (0, [1, 1, 1], 0)
    assert finished == [reqs[0]]
    b, _ = step(sched, 2.0)
    assert (b.draft_k, b.num_new_tokens, b.num_spec_tokens) == (2, [3, 3], 4)
    # The prefill step started with nobody running: it speculated (the proposer runs on
    # the prompts and drafts for the first decode step).
    s = sched.speculator.stats
    assert (s.num_steps_disabled, s.num_steps_speculating) == (1, 2)


def test_no_fast_forward_while_drafting_but_allowed_when_switched_off() -> None:
    sched = scheduler(speculator(2, 1.0, disable_by_batch_size=1))
    a, b = request(0, 4, 10), request(1, 4, 10)
    sched.add(a)
    sched.add(b)
    step(sched, 0.0)
    # 2 running > 1: drafts are off, so identical decode steps may be fast-forwarded.
    assert sched.plan_decode_run(1.0) > 1
    out = sched.apply_decode_run(3, 4.0)
    assert out.num_draft_tokens == 0
    s = sched.speculator.stats  # the prefill step (nobody running yet) speculated
    assert (s.num_steps_speculating, s.num_steps_disabled) == (1, 3)
    lone = scheduler(speculator(2, 1.0))
    req = request(0, 4, 10)
    lone.add(req)
    step(lone, 0.0)
    assert lone.plan_decode_run(1.0) == 0  # one running request drafts: step by step
    batch = lone.schedule(1.0)
    assert lone.decode_run_limit(batch, 1.0) == 0


def test_rejection_counts_the_last_verify_slots() -> None:
    # 2 blocks of 4 = 8 slots. prompt 5 + output 4: without drafts 8 slots suffice; with
    # k = 2 the last verify needs 7 + 1 + 2 = 10 slots, so the request can never run.
    req = request(0, 5, 4)
    assert scheduler(None, blocks=2).rejection_reason(req) == ""
    assert "needs 3 KV blocks" in scheduler(speculator(2, 1.0), blocks=2).rejection_reason(req)
    single = request(1, 7, 1)  # one output token: finishes at its prefill, never verifies
    assert scheduler(speculator(2, 1.0), blocks=2).rejection_reason(single) == ""


def test_itl_is_one_sample_per_chunk() -> None:
    # All accepted, k = 3: the request emits 4 tokens per step as one chunk: one ITL sample
    # per decode step (as `vllm bench serve` records one gap per streamed chunk).
    sched = scheduler(speculator(3, 1.0))
    req = request(0, 4, 9)
    sched.add(req)
    step(sched, 0.0)
    samples = 0
    for t in range(1, 3):
        batch = sched.schedule(float(t))
        out = sched.on_batch_done(batch, float(t), float(t + 1))
        samples += sum(out.itl_step_count) + len(out.itl_other_s)
        assert (out.num_draft_tokens, out.num_accepted_tokens) == (3, 3)
    assert (samples, req.num_output_done, req.status) == (2, 9, Status.FINISHED)


def test_draft_slots_are_reserved_but_never_prefix_cached() -> None:
    # Block size 4, prompt 3, keys for blocks 0 and 1. After the prefill 3 tokens are
    # computed; a verify of 1 + 5 tokens fills slots 3..8: block 0 (0..3) holds known
    # tokens only and is cached, block 1 (4..7) only drafts: it gets a block (3 held) but
    # is not cached, as vLLM caches up to num_tokens (drafts may be rejected).
    from infsim.kvcache.prefix_cache import PrefixCachingKV

    config = SchedulerConfig(max_num_seqs=8, max_num_batched_tokens=64)
    sched = ContinuousBatchingScheduler(config, PrefixCachingKV(10, 4), speculator(5, 0.0))
    req = RequestState(index=0, request_id=0, arrival_s=0.0, num_prompt_tokens=3,
                       num_output_tokens=9, block_keys=[10, 11])  # fmt: skip
    sched.add(req)
    step(sched, 0.0)
    assert set(sched.kv.cached) == set()
    batch, _ = step(sched, 1.0)
    assert batch.num_new_tokens == [6]
    assert (req.num_blocks, req.num_computed_tokens) == (3, 4)
    assert set(sched.kv.cached) == {10}
