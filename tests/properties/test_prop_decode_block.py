"""Hypothesis: the scheduler's decode-block fast paths against the pre-fast-path scheduler.

`schedule` answers a running set of plain decodes without the per-request loop (blocks
allocated where the loop would, falling back to it at the first failed allocation),
`on_batch_done` applies that block's rows without per-row checks, `apply_decode_run`
derives the summary after a run that finishes nobody from the one before it, and the
batch carries Σ attention work. `ReferenceScheduler` (tests/scheduling/reference_scheduler.py)
is the scheduler before those changes. Both are driven in lockstep through random small
workloads (tiny KV pools, so allocations fail inside the decode block and preemption
follows; prefix caching, with keys covering the prompt or prompt and output, or a block
counter; priority and FCFS), stepping or
fast-forwarding, and after every decision must agree on the batch (rows, tokens,
contexts, counters), the outcome, every request's state and the KV pool; the batch's
running sums must equal a pass over its rows.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.core.batch import Batch, StepOutcome
from infsim.core.request import Status
from infsim.cost.base import attention_work
from infsim.scheduling.continuous import ContinuousBatchingScheduler
from tests.properties.test_prop_scheduler_loop import Setup, build, setup_strategy
from tests.scheduling.reference_scheduler import ReferenceScheduler

FIELDS = (
    "status", "num_computed_tokens", "num_output_done", "num_blocks", "num_preemptions",
    "num_cached_tokens", "first_scheduled_s", "first_token_s", "last_emit_s", "finish_s",
)  # fmt: skip
HITS: dict[str, int] = {}  # decode blocks seen, whole or cut by an allocation, per KV kind


class Spied(ContinuousBatchingScheduler):
    """Counts the decode blocks `_schedule_decodes` answers, whole or cut short."""

    def _schedule_decodes(self, batch: Batch, now: float) -> int:
        summary, running = self._summary, self.running
        applies = (summary is not None and summary[2] == now and summary[0] is running
                   and summary[1] == len(running) and summary[3] > 0)  # fmt: skip
        m = super()._schedule_decodes(batch, now)
        if applies:
            key = ("full " if m == len(running) else "partial ") + type(self.kv).__name__
            HITS[key] = HITS.get(key, 0) + 1
        return m


def same_batch(a: Batch, b: Batch) -> None:
    assert [r.request_id for r in a.requests] == [r.request_id for r in b.requests]
    assert a.num_new_tokens == b.num_new_tokens
    assert a.num_context_tokens == b.num_context_tokens
    assert (a.num_batched_tokens, a.num_sampled, a.num_admitted, a.num_preempted,
            a.num_spec_tokens) == (b.num_batched_tokens, b.num_sampled, b.num_admitted,
                                   b.num_preempted, b.num_spec_tokens)  # fmt: skip
    rows = zip(a.num_new_tokens, a.num_context_tokens, strict=True)
    pairs = sum(q * c + q * (q + 1) // 2 for q, c in rows)
    kv_tokens = sum(a.num_context_tokens) + sum(a.num_new_tokens)
    assert a.attn_rows == len(a.requests)  # the scheduler's batches carry their sums
    assert attention_work(a) == (pairs, kv_tokens)


def same_outcome(a: StepOutcome, b: StepOutcome) -> None:
    assert [r.request_id for r in a.finished] == [r.request_id for r in b.finished]
    assert (a.num_first_tokens, a.itl_step_s, a.itl_step_count, a.itl_other_s) == (
        b.num_first_tokens, b.itl_step_s, b.itl_step_count, b.itl_other_s)  # fmt: skip


def same_state(new, ref, new_reqs, ref_reqs) -> None:
    for a, b in zip(new_reqs, ref_reqs, strict=True):
        assert [getattr(a, f) for f in FIELDS] == [getattr(b, f) for f in FIELDS]
        assert a.block_ids == b.block_ids
    assert [r.request_id for r in new.running] == [r.request_id for r in ref.running]
    assert [r.request_id for r in new.waiting] == [r.request_id for r in ref.waiting]
    assert new.kv.num_free_blocks == ref.kv.num_free_blocks
    assert new.num_preemptions == ref.num_preemptions


def lockstep(setup: Setup, fast: bool, keyed_output: bool, rng: st.DataObject) -> None:
    new, new_reqs = build(setup, Spied, keyed_output)
    ref, ref_reqs = build(setup, ReferenceScheduler, keyed_output)
    pending = list(range(len(new_reqs)))
    now = 0.0
    for _ in range(10_000):
        while pending and new_reqs[pending[0]].arrival_s <= now:
            i = pending.pop(0)
            for sched, req in ((new, new_reqs[i]), (ref, ref_reqs[i])):
                if sched.rejection_reason(req):
                    req.status = Status.REJECTED
                else:
                    sched.add(req)
        if not new.has_work():
            assert not ref.has_work()
            if not pending:
                return
            now = new_reqs[pending[0]].arrival_s
            continue
        next_arrival = new_reqs[pending[0]].arrival_s if pending else float("inf")
        k = new.plan_decode_run(now) if fast else 0
        assert k == (ref.plan_decode_run(now) if fast else 0)
        if k:
            k = int(min(k, max(1, next_arrival - now)))
            if rng.draw(st.booleans()):  # an arrival may cut a run short
                k = rng.draw(st.integers(1, k))
            assert new.decode_run_context_tokens() == ref.decode_run_context_tokens()
            same_outcome(new.apply_decode_run(k, now + k), ref.apply_decode_run(k, now + k))
            now += k
        else:
            batch, ref_batch = new.schedule(now), ref.schedule(now)
            same_batch(batch, ref_batch)
            if not batch.requests:
                same_state(new, ref, new_reqs, ref_reqs)
                continue
            kk = new.decode_run_limit(batch, now) if fast else 0
            assert kk == (ref.decode_run_limit(ref_batch, now) if fast else 0)
            if kk > 1:
                kk = int(min(kk, max(1, next_arrival - now)))
                out = new.apply_decode_run(kk, now + kk)
                ref_out = ref.apply_decode_run(kk, now + kk)
                now += kk
            else:
                out = new.on_batch_done(batch, now, now + 1.0)
                ref_out = ref.on_batch_done(ref_batch, now, now + 1.0)
                now += 1.0
            same_outcome(out, ref_out)
        same_state(new, ref, new_reqs, ref_reqs)
    raise AssertionError("loop did not terminate")


@settings(max_examples=400, deadline=None)
@given(setup_strategy, st.booleans(), st.booleans(), st.data())
def test_decode_block_matches_reference(
    setup: Setup, fast: bool, keyed_output: bool, data: st.DataObject
) -> None:
    lockstep(setup, fast, keyed_output, data)


def test_decode_block_paths_are_exercised() -> None:
    """The examples above reach whole decode blocks and blocks cut by a failed allocation."""
    test_decode_block_matches_reference()
    for kind in ("BlockCounter", "PrefixCachingKV"):
        assert HITS.get(f"full {kind}", 0) > 50, HITS
        assert HITS.get(f"partial {kind}", 0) > 0, HITS
