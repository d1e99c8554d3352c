"""vLLM V1 continuous-batching scheduler: exact per-step token assignments.

No SimPy: the scheduler is pure, so each test drives `schedule(now)` and
`on_batch_done(batch, start, end)` by hand with unit-length steps (step k runs from k to
k + 1) and asserts which request got how many new tokens in which step.
"""

from __future__ import annotations

import pytest

from infsim.core.batch import Batch
from infsim.core.request import RequestState, Status
from infsim.kvcache.counter import BlockCounter
from infsim.kvcache.prefix_cache import PrefixCachingKV
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig


def make_req(
    rid: int,
    prompt: int,
    output: int,
    *,
    arrival: float = 0.0,
    priority: int = 0,
    keys: list[int] | None = None,
) -> RequestState:
    return RequestState(
        index=rid,
        request_id=rid,
        arrival_s=arrival,
        num_prompt_tokens=prompt,
        num_output_tokens=output,
        priority=priority,
        block_keys=keys,
    )


def make_sched(
    *,
    budget: int = 100,
    max_seqs: int = 16,
    blocks: int = 1000,
    block_size: int = 4,
    chunked: bool = True,
    threshold: int = 0,
    policy: str = "fcfs",
    max_model_len: int = 1 << 62,
    prefix: bool = False,
    prefill_first: bool = False,
) -> ContinuousBatchingScheduler:
    config = SchedulerConfig(
        max_num_seqs=max_seqs,
        max_num_batched_tokens=budget,
        enable_chunked_prefill=chunked,
        long_prefill_token_threshold=threshold,
        scheduling_policy=policy,
        max_model_len=max_model_len,
        prefill_first=prefill_first,
    )
    kv_cls = PrefixCachingKV if prefix else BlockCounter
    return ContinuousBatchingScheduler(config, kv_cls(blocks, block_size))


def assignment(batch: Batch) -> list[tuple[int, int]]:
    return [(r.request_id, n) for r, n in zip(batch.requests, batch.num_new_tokens, strict=True)]


class Stepper:
    """Runs step k over [k, k + 1) and records (request_id, new tokens) per step."""

    def __init__(self, sched: ContinuousBatchingScheduler) -> None:
        self.sched = sched
        self.now = 0.0
        self.batches: list[Batch] = []

    def step(self) -> list[tuple[int, int]]:
        batch = self.sched.schedule(self.now)
        self.batches.append(batch)
        self.sched.on_batch_done(batch, self.now, self.now + 1.0)
        self.now += 1.0
        return assignment(batch)


# -- token budget and chunked prefill ---------------------------------------------------


def test_chunked_prefill_splits_second_prompt_over_budget() -> None:
    # budget 10: A's whole prompt (8) plus the first 2 of B's 6; step 2: A decodes (1),
    # B gets its last 4 and samples its first token; step 3: both decode and finish.
    sched = make_sched(budget=10)
    a, b = make_req(0, 8, 3), make_req(1, 6, 2)
    sched.add(a)
    sched.add(b)
    st = Stepper(sched)
    assert st.step() == [(0, 8), (1, 2)]
    assert st.batches[0].num_sampled == 1  # only A's prompt is complete
    assert (a.first_token_s, b.first_token_s) == (1.0, -1.0)
    assert st.step() == [(0, 1), (1, 4)]
    assert st.batches[1].num_context_tokens == [8, 2]
    assert b.first_token_s == 2.0
    assert st.step() == [(0, 1), (1, 1)]
    assert (a.finish_s, b.finish_s) == (3.0, 3.0)
    assert a.status is Status.FINISHED
    assert b.status is Status.FINISHED
    assert not sched.has_work()
    assert sched.kv.num_free_blocks == 1000


def test_budget_exhausted_by_running_requests_admits_nobody() -> None:
    # budget 3: A takes 3 of its 7 prompt tokens, B (waiting) gets nothing until A's
    # prompt is done; then A decodes (1) and B gets the remaining 2.
    sched = make_sched(budget=3)
    sched.add(make_req(0, 7, 2))
    sched.add(make_req(1, 5, 1))
    st = Stepper(sched)
    assert st.step() == [(0, 3)]
    assert st.step() == [(0, 3)]
    assert st.step() == [(0, 1), (1, 2)]
    assert st.step() == [(0, 1), (1, 2)]
    assert st.step() == [(1, 1)]
    assert not sched.has_work()


def test_max_num_seqs_caps_running_set() -> None:
    # max_num_seqs 2: C waits although budget and blocks are plentiful, and is admitted
    # in the step after A (1 output token) finished.
    sched = make_sched(max_seqs=2)
    reqs = [make_req(0, 4, 1), make_req(1, 4, 3), make_req(2, 4, 1)]
    for r in reqs:
        sched.add(r)
    st = Stepper(sched)
    assert st.step() == [(0, 4), (1, 4)]
    assert reqs[0].finish_s == 1.0
    assert st.step() == [(1, 1), (2, 4)]
    assert reqs[2].first_scheduled_s == 1.0
    assert st.step() == [(1, 1)]


def test_chunked_prefill_off_blocks_queue_behind_large_prompt() -> None:
    # Chunked prefill off, budget 10: A (8) fits; B (6) does not fit the 2 left, waits,
    # and C (2), which would fit, waits behind it (FCFS head-of-line blocking).
    # Step 2: A decodes (1), B (6) and C (2) fit in the 9 left.
    sched = make_sched(budget=10, chunked=False)
    for r in (make_req(0, 8, 2), make_req(1, 6, 2), make_req(2, 2, 2)):
        sched.add(r)
    st = Stepper(sched)
    assert st.step() == [(0, 8)]
    assert [r.request_id for r in sched.waiting] == [1, 2]
    assert st.step() == [(0, 1), (1, 6), (2, 2)]
    assert st.step() == [(1, 1), (2, 1)]
    assert not sched.has_work()


def test_chunked_prefill_on_same_workload_fills_budget() -> None:
    # Contrast with the test above: chunking lets B take the 2 tokens left in step 1.
    sched = make_sched(budget=10, chunked=True)
    for r in (make_req(0, 8, 2), make_req(1, 6, 2), make_req(2, 2, 2)):
        sched.add(r)
    st = Stepper(sched)
    assert st.step() == [(0, 8), (1, 2)]
    assert st.step() == [(0, 1), (1, 4), (2, 2)]


def test_v0_prefill_first_runs_prompts_without_decodes() -> None:
    # vLLM V0, chunked prefill off: B arrives while A decodes. V1 mixes B's prompt into A's
    # next decode step; V0 runs B's prompt alone (A skips that step), then both decode.
    for prefill_first, expected in ((False, [[(0, 1), (1, 4)], [(0, 1), (1, 1)]]),
                                    (True, [[(1, 4)], [(0, 1), (1, 1)]])):  # fmt: skip
        sched = make_sched(chunked=False, prefill_first=prefill_first)
        a, b = make_req(0, 4, 4), make_req(1, 4, 3)
        sched.add(a)
        st = Stepper(sched)
        assert st.step() == [(0, 4)]
        sched.add(b)
        assert [st.step(), st.step()] == expected
    assert a.num_output_done == 2  # A lost a step to B's prompt


def test_v0_prefill_first_takes_the_whole_budget_and_decodes_when_blocked() -> None:
    # Budget 5: with A running, the mixed step leaves 4 for B's 5-token prompt (it waits,
    # chunked prefill off); V0 schedules prompts first, with all 5.
    mixed = make_sched(budget=5, chunked=False)
    first = make_sched(budget=5, chunked=False, prefill_first=True)
    for sched, step2 in ((mixed, [(0, 1)]), (first, [(1, 5)])):
        sched.add(make_req(0, 4, 4))
        st = Stepper(sched)
        st.step()
        sched.add(make_req(1, 5, 2))
        assert st.step() == step2
    # A waiting prompt that cannot be admitted (max_num_seqs) lets the decodes run.
    capped = make_sched(chunked=False, prefill_first=True, max_seqs=1)
    capped.add(make_req(0, 4, 3))
    st = Stepper(capped)
    st.step()
    capped.add(make_req(1, 4, 2))
    assert [st.step(), st.step(), st.step()] == [[(0, 1)], [(0, 1)], [(1, 4)]]


def test_v0_prefill_first_with_a_batch_in_flight() -> None:
    # Pipeline parallelism: A's batch is in flight (excluded). B's prompt is scheduled
    # first all the same, A keeping its seat: with max_num_seqs 2 a third prompt waits.
    sched = make_sched(chunked=False, prefill_first=True, max_seqs=2)
    a, b, c = make_req(0, 4, 4), make_req(1, 4, 3), make_req(2, 4, 3)
    sched.add(a)
    assert assignment(sched.schedule(0.0)) == [(0, 4)]
    sched.add(b)
    sched.add(c)
    assert assignment(sched.schedule(0.0, exclude={id(a)})) == [(1, 4)]


def test_long_prefill_token_threshold_caps_each_prefill() -> None:
    # threshold 3: prompts are fed 3 tokens at a time per request; the budget (10) is not
    # the limit. A: 3, 3, 1 (first token at end of step 3); B: 3, 1.
    sched = make_sched(budget=10, threshold=3)
    a, b = make_req(0, 7, 2), make_req(1, 4, 1)
    sched.add(a)
    sched.add(b)
    st = Stepper(sched)
    assert st.step() == [(0, 3), (1, 3)]
    assert st.step() == [(0, 3), (1, 1)]
    assert b.finish_s == 2.0
    assert st.step() == [(0, 1)]
    assert a.first_token_s == 3.0
    assert st.step() == [(0, 1)]
    assert a.finish_s == 4.0


def test_threshold_does_not_cap_decode() -> None:
    sched = make_sched(budget=10, threshold=1)
    a = make_req(0, 2, 3)
    sched.add(a)
    st = Stepper(sched)
    assert [st.step() for _ in range(4)] == [[(0, 1)], [(0, 1)], [(0, 1)], [(0, 1)]]
    assert (a.first_token_s, a.finish_s) == (2.0, 4.0)


# -- token accounting, TTFT, finish ------------------------------------------------------


def test_first_token_on_step_completing_prompt_and_finish_on_last_token() -> None:
    # Prompt 10 in chunks of 4 (budget 4): steps 1-3 are 4, 4, 2; the 2-token chunk
    # completes the prompt, so the first token is sampled at t=3; 3 more decode steps.
    sched = make_sched(budget=4)
    a = make_req(0, 10, 4, arrival=0.0)
    sched.add(a)
    st = Stepper(sched)
    assert st.step() == [(0, 4)]
    assert a.first_scheduled_s == 0.0
    assert (a.num_output_done, a.first_token_s) == (0, -1.0)
    assert st.step() == [(0, 4)]
    assert st.step() == [(0, 2)]
    assert (a.num_output_done, a.first_token_s, a.num_tokens) == (1, 3.0, 11)
    for k in range(3):
        assert a.status is Status.RUNNING
        assert st.step() == [(0, 1)]
        assert a.num_output_done == 2 + k
    assert (a.status, a.finish_s, a.last_emit_s) == (Status.FINISHED, 6.0, 6.0)
    # vLLM accounting: the last sampled token's KV is never computed.
    assert a.num_computed_tokens == 13 == a.num_prompt_tokens + a.num_output_tokens - 1
    assert a.num_blocks == 0  # freed on finish


def test_single_output_token_finishes_on_prefill_step() -> None:
    sched = make_sched()
    a = make_req(0, 5, 1)
    sched.add(a)
    batch = sched.schedule(0.0)
    out = sched.on_batch_done(batch, 0.0, 0.25)
    assert out.finished == [a]
    assert out.num_first_tokens == 1
    assert (a.first_token_s, a.finish_s) == (0.25, 0.25)
    assert out.itl_step_s == []
    assert out.itl_other_s == []


def test_itl_samples_step_vs_other_gap() -> None:
    # A decodes every step: its gaps are step ITLs. B's prompt is chunked over two steps
    # after A's first token, so B has no ITL until it has emitted twice.
    sched = make_sched(budget=4)
    a, b = make_req(0, 3, 4), make_req(1, 6, 2)
    sched.add(a)
    sched.add(b)
    b1 = sched.schedule(0.0)
    assert assignment(b1) == [(0, 3), (1, 1)]
    o1 = sched.on_batch_done(b1, 0.0, 1.0)
    assert (o1.num_first_tokens, o1.itl_step_s, o1.itl_step_count) == (1, [], [])
    b2 = sched.schedule(1.0)
    assert assignment(b2) == [(0, 1), (1, 3)]
    o2 = sched.on_batch_done(b2, 1.0, 2.5)
    assert (o2.itl_step_s, o2.itl_step_count) == ([1.5], [1])
    b3 = sched.schedule(2.5)
    assert assignment(b3) == [(0, 1), (1, 2)]
    o3 = sched.on_batch_done(b3, 2.5, 3.0)
    assert o3.num_first_tokens == 1
    assert (o3.itl_step_s, o3.itl_step_count, o3.itl_other_s) == ([0.5], [1], [])


# -- preemption (recompute) -------------------------------------------------------------


def test_fcfs_preempts_last_admitted_and_recomputes() -> None:
    # 4 blocks of 4 tokens. A and B (prompt 4, 8 outputs) take 1 block each in step 1 and
    # a second each in step 2 (computed 4 -> 5). In step 6 (index 5) A needs its third
    # block (computed 8 -> 9): none is free, so B, the last admitted, is preempted (its 2
    # blocks freed, A takes one). B was at 5 outputs; it returns to the waiting front
    # and nobody is admitted in that step.
    sched = make_sched(blocks=4, block_size=4)
    a, b = make_req(0, 4, 8), make_req(1, 4, 8)
    sched.add(a)
    sched.add(b)
    st = Stepper(sched)
    for _ in range(5):
        st.step()
    assert (a.num_output_done, b.num_output_done) == (5, 5)
    assert sched.kv.num_free_blocks == 0
    assert st.step() == [(0, 1)]
    assert st.batches[-1].num_preempted == 1
    assert st.batches[-1].num_admitted == 0
    assert sched.num_preemptions == 1
    assert (b.status, b.num_preemptions, b.num_computed_tokens, b.num_blocks) == (
        Status.WAITING,
        1,
        0,
        0,
    )
    assert b.num_output_done == 5  # generated tokens are kept
    assert [r.request_id for r in sched.waiting] == [1]
    assert sched.kv.num_free_blocks == 1
    # B now needs ceil(9 / 4) = 3 blocks; only 1 is free until A finishes at step 8.
    assert st.step() == [(0, 1)]
    assert st.step() == [(0, 1)]
    assert a.finish_s == 8.0
    # Resume: prompt + generated tokens (4 + 5) recomputed in one step, which samples.
    assert st.step() == [(1, 9)]
    assert st.batches[-1].num_context_tokens == [0]
    assert b.num_output_done == 6
    assert b.first_scheduled_s == 0.0  # kept from the first admission
    assert b.first_token_s == 1.0
    assert st.step() == [(1, 1)]
    assert st.step() == [(1, 1)]
    assert (b.finish_s, b.status) == (11.0, Status.FINISHED)
    assert sched.kv.num_free_blocks == 4


def test_preempted_request_goes_to_front_of_fcfs_queue() -> None:
    # C (prompt 8) arrives last and cannot fit (2 blocks needed, none free) while A and
    # B decode. When B is preempted it is put ahead of C.
    sched = make_sched(blocks=4, block_size=4, max_seqs=2)
    a, b, c = make_req(0, 4, 8), make_req(1, 4, 8), make_req(2, 8, 1)
    for r in (a, b, c):
        sched.add(r)
    st = Stepper(sched)
    for _ in range(5):
        st.step()
    assert [r.request_id for r in sched.waiting] == [2]
    st.step()
    assert [r.request_id for r in sched.waiting] == [1, 2]


def test_no_admission_in_step_that_preempted() -> None:
    # 3 blocks of 4. Step 1: A and B (prompt 4) take one block each; 1 block free.
    sched = make_sched(blocks=3, block_size=4, budget=100)
    a, b = make_req(0, 4, 6), make_req(1, 4, 6)
    sched.add(a)
    sched.add(b)
    st = Stepper(sched)
    assert st.step() == [(0, 4), (1, 4)]  # 2 blocks used, 1 free
    c = make_req(2, 1, 1)  # 1 token, 1 block: fits the free block
    sched.add(c)
    # A needs a 2nd block (computed 4 -> 5) and takes the free one; B then needs one:
    # none free, B (last admitted) is preempted; C would fit in B's freed block but a
    # step that preempted admits nobody.
    assert st.step() == [(0, 1)]
    assert st.batches[-1].num_preempted == 1
    assert c.status is Status.WAITING
    assert [r.request_id for r in sched.waiting] == [1, 2]
    # Next step: B (front) recomputes 4 + 1 tokens = 2 blocks, 1 free -> blocked, and
    # C stays behind it (FCFS).
    assert st.step() == [(0, 1)]
    assert c.first_scheduled_s == -1.0


def test_running_request_preempts_itself_when_it_is_last() -> None:
    # A (prompt 4) is the only running request; B's admission took the last block.
    # When B (last admitted) needs a block and none is free, B is preempted by itself:
    # the running loop stops and B is not in the batch.
    sched = make_sched(blocks=2, block_size=4)
    a, b = make_req(0, 3, 2), make_req(1, 4, 3)
    sched.add(a)
    sched.add(b)
    st = Stepper(sched)
    assert st.step() == [(0, 3), (1, 4)]
    # A: computed 3 -> 4 stays in block 1. B: computed 4 -> 5 needs a 2nd block: none.
    assert st.step() == [(0, 1)]
    assert (b.status, b.num_preemptions) == (Status.WAITING, 1)
    assert a.finish_s == 2.0
    # A finished and freed its block: B recomputes 4 + 1 tokens (2 blocks).
    assert st.step() == [(1, 5)]
    assert st.step() == [(1, 1)]
    assert b.finish_s == 4.0


@pytest.mark.parametrize(
    ("policy", "expected_batch", "victim"),
    [
        # priority: the victim is B (largest priority value), although it was admitted
        # first and already decoded in this step: it leaves the batch, frees 2 blocks,
        # and A and C each take one.
        ("priority", [(0, 1), (2, 1)], 1),
        # fcfs: the victim is C, the last admitted; A takes C's freed block; C itself is
        # not scheduled.
        ("fcfs", [(1, 1), (0, 1)], 2),
    ],
)
def test_preemption_victim_by_policy(
    policy: str, expected_batch: list[tuple[int, int]], victim: int
) -> None:
    # 4 blocks of 4. Step 1: B (priority 5) alone, 1 block. Then A (priority 0) and C
    # (priority 1) arrive. Step 2: B 4 -> 5 takes a 2nd block, A and C are admitted with
    # 1 block each: running [B, A, C], no block free. Step 3: B 5 -> 6 fits; A 4 -> 5
    # needs a block.
    sched = make_sched(blocks=4, block_size=4, policy=policy)
    b = make_req(1, 4, 6, priority=5)
    sched.add(b)
    st = Stepper(sched)
    assert st.step() == [(1, 4)]
    a = make_req(0, 4, 6, priority=0, arrival=0.5)
    c = make_req(2, 4, 6, priority=1, arrival=0.5)
    sched.add(a)
    sched.add(c)
    assert st.step() == [(1, 1), (0, 4), (2, 4)]
    assert sched.kv.num_free_blocks == 0
    assert st.step() == expected_batch
    batch = st.batches[-1]
    assert batch.num_preempted == 1
    assert batch.num_batched_tokens == 2
    assert batch.num_sampled == 2
    preempted = [r for r in (a, b, c) if r.num_preemptions]
    assert [r.request_id for r in preempted] == [victim]
    assert preempted[0].status is Status.WAITING
    assert sched.kv.num_free_blocks == 0


def test_priority_victim_already_scheduled_is_removed_from_batch() -> None:
    # Priority: B (priority 9) runs first (admitted alone), then A (priority 0) arrives.
    # In the step where A needs a block, B was already scheduled earlier in the same
    # step; it is taken out of the batch and its tokens returned to the budget.
    sched = make_sched(blocks=2, block_size=4, policy="priority")
    b = make_req(1, 3, 5, priority=9)
    sched.add(b)
    st = Stepper(sched)
    assert st.step() == [(1, 3)]
    a = make_req(0, 4, 3, priority=0, arrival=1.0)
    sched.add(a)
    # Step 2: B decodes (computed 3 -> 4, stays in its block); A is admitted (1 block).
    assert st.step() == [(1, 1), (0, 4)]
    assert sched.kv.num_free_blocks == 0
    # Step 3: B (4 -> 5) needs a block: none; victim = max priority = B itself. As in
    # vLLM, a request that preempted itself ends the step's scheduling: nothing runs.
    batch = sched.schedule(st.now)
    assert assignment(batch) == []
    assert batch.num_preempted == 1
    assert b.status is Status.WAITING
    # Step 4 (same time): A (4 -> 5) needs a block and gets B's freed one; B waits.
    batch = sched.schedule(st.now)
    assert assignment(batch) == [(0, 1)]
    assert batch.num_preempted == 0
    assert batch.num_batched_tokens == 1
    assert batch.num_sampled == 1
    assert b.status is Status.WAITING


def test_priority_victim_scheduled_earlier_in_same_step() -> None:
    # Running order [B (prio 9), A (prio 0)]: B decodes within its block first; then A
    # needs a new block, none free, victim = B (already in the batch): B is removed and
    # its token returned to the budget; A is scheduled.
    sched = make_sched(blocks=2, block_size=4, policy="priority")
    b = make_req(1, 2, 5, priority=9)
    sched.add(b)
    st = Stepper(sched)
    assert st.step() == [(1, 2)]
    a = make_req(0, 4, 3, priority=0, arrival=1.0)
    sched.add(a)
    assert st.step() == [(1, 1), (0, 4)]  # B: 2 -> 3, A admitted: 2 blocks used
    batch = sched.schedule(st.now)  # B: 3 -> 4 fits; A: 4 -> 5 needs a block
    assert assignment(batch) == [(0, 1)]
    assert batch.num_batched_tokens == 1
    assert batch.num_sampled == 1
    assert batch.num_preempted == 1
    assert (b.status, b.num_computed_tokens, b.num_blocks) == (Status.WAITING, 0, 0)
    assert [r.request_id for r in sched.running] == [0]


# -- waiting-queue order ----------------------------------------------------------------


def test_priority_queue_order_with_ties_by_arrival_then_index() -> None:
    # max_num_seqs 1 and 1-token requests: one request per step, in queue order.
    sched = make_sched(max_seqs=1, policy="priority")
    reqs = [
        make_req(0, 2, 1, priority=2, arrival=0.0),
        make_req(1, 2, 1, priority=1, arrival=3.0),
        make_req(2, 2, 1, priority=1, arrival=1.0),
        make_req(3, 2, 1, priority=0, arrival=5.0),
        make_req(4, 2, 1, priority=1, arrival=1.0),  # tie with 2 on arrival: index
    ]
    for r in reqs:
        sched.add(r)
    st = Stepper(sched)
    order = [st.step()[0][0] for _ in range(5)]
    assert order == [3, 2, 4, 1, 0]


def test_fcfs_queue_ignores_priority() -> None:
    sched = make_sched(max_seqs=1)
    for i, prio in enumerate([5, 0, 3]):
        sched.add(make_req(i, 2, 1, priority=prio))
    st = Stepper(sched)
    assert [st.step()[0][0] for _ in range(3)] == [0, 1, 2]


# -- rejection ------------------------------------------------------------------------


def test_rejection_reasons() -> None:
    sched = make_sched(budget=16, blocks=5, block_size=4, max_model_len=30, chunked=False)
    # Over max_model_len (prompt + output).
    assert sched.rejection_reason(make_req(0, 25, 6)) == (
        "prompt+output 31 tokens > max_model_len 30"
    )
    # Exactly max_model_len tokens and ceil(19/4) = 5 blocks: fits the cache... but the
    # chunked-off rule needs prompt+output-1 <= budget (a resumed request recomputes all).
    assert sched.rejection_reason(make_req(1, 15, 5)) == (
        "prompt+output 20 tokens > max_num_batched_tokens 16 with chunked prefill off"
    )
    # 17 tokens: 16 KV tokens = 4 blocks, budget 16: OK.
    assert sched.rejection_reason(make_req(2, 16, 1)) == ""
    assert sched.rejection_reason(make_req(3, 10, 7)) == ""
    # More blocks than the cache: 22 tokens -> ceil(21 / 4) = 6 > 5.
    big = make_sched(blocks=5, block_size=4, max_model_len=100)
    assert big.rejection_reason(make_req(4, 20, 2)) == "needs 6 KV blocks, replica has 5"
    assert big.rejection_reason(make_req(5, 20, 1)) == ""  # 20 KV tokens = 5 blocks


def test_chunked_on_accepts_prompt_over_budget() -> None:
    sched = make_sched(budget=8, blocks=100, chunked=True)
    assert sched.rejection_reason(make_req(0, 50, 5)) == ""


@pytest.mark.parametrize("policy", ["fcfs", "priority"])
def test_unknown_policy_rejected_and_known_accepted(policy: str) -> None:
    make_sched(policy=policy)  # known policies construct
    with pytest.raises(Exception, match="bogus"):
        make_sched(policy="bogus")


# -- prefix-cache hit on admission ------------------------------------------------------


def test_prefix_hit_starts_at_cached_length() -> None:
    # Block size 4. A (prompt 10, keys for 2 full blocks) runs and finishes; B with the
    # same first two keys is admitted with 8 cached tokens and computes only 2.
    sched = make_sched(prefix=True, blocks=10, block_size=4)
    a = make_req(0, 10, 1, keys=[11, 12])
    sched.add(a)
    st = Stepper(sched)
    assert st.step() == [(0, 10)]
    b = make_req(1, 10, 2, keys=[11, 12])
    sched.add(b)
    assert st.step() == [(1, 2)]
    assert st.batches[-1].num_context_tokens == [8]
    assert (b.num_cached_tokens, b.first_token_s) == (8, 2.0)


def test_prefix_hit_capped_so_one_token_is_computed() -> None:
    # Prompt of exactly 2 blocks fully cached: the hit is capped at 1 block (4 tokens)
    # so the step still computes the last 4 and samples.
    sched = make_sched(prefix=True, blocks=10, block_size=4)
    sched.add(make_req(0, 8, 1, keys=[1, 2]))
    st = Stepper(sched)
    st.step()
    b = make_req(1, 8, 1, keys=[1, 2])
    sched.add(b)
    assert st.step() == [(1, 4)]
    assert b.num_cached_tokens == 4
