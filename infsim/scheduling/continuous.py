"""vLLM V1 continuous-batching scheduler (token budget, chunked prefill, recompute preemption).

One call to `schedule(now)` builds one engine step, following vLLM V1's `Scheduler.schedule`:

1. Running requests first, in admission order: each gets
   n = num_tokens - num_computed_tokens (1 when decoding), capped by
   `long_prefill_token_threshold` and by the remaining token budget. When its KV blocks
   cannot be allocated, the lowest-priority running request (FCFS: the last admitted)
   is preempted — blocks freed, progress reset to zero, put back at the front of the
   waiting queue — until the allocation succeeds; a request that had to preempt itself
   ends the running loop (the step may come out empty; the engine then schedules again).
2. If nothing was preempted, waiting requests are admitted in queue order while
   `max_num_seqs`, the token budget and free KV blocks allow; a prefix-cache hit starts
   the request at the cached length. With chunked prefill off, a prompt larger than the
   remaining budget waits (and so does everybody behind it). vLLM V0 without chunked
   prefill (`SchedulerConfig.prefill_first`) admits waiting prompts *before* the running
   requests, with the whole budget, and runs a step that admitted any without decodes.

`on_batch_done` applies the step at its end time (one path, speculative rows included): a
request whose computed tokens reach num_tokens samples one token (the first is its TTFT
event) and finishes after its last. Schedulers of other roles (disaggregation) change
what happens through hooks: `release_finished`, `after_schedule`, `after_apply`.

Fast-forward: when a step is pure decode (every running request scheduled for exactly one
token, nobody admitted or preempted), the next steps are the same until a request
finishes, KV blocks run out or a request arrives, because none of the conditions that
blocked admission can loosen in between (see `decode_run_limit`). `apply_decode_run`
applies k such steps at once; the result equals k calls of schedule/on_batch_done.

Speculative decoding (vLLM V1's `spec_token_ids`), when a `Speculator` is given: in a step
that speculates, a decoding request is scheduled 1 + k tokens (its token, k drafts; fewer
when the budget or max_model_len cuts them), which count against the budget and get KV
slots. After the step `num_computed_tokens` advances by the accepted drafts + 1 only (the
rejected drafts' slots are rolled back and rewritten by the next step; their blocks stay
with the request, as in vLLM) and the request emits accepted + 1 tokens at the step end,
as one streamed chunk (one ITL sample). Tokens past the request's output length are
discarded, as `max_tokens` does. No fast-forward while drafts are proposed: acceptance
is random per step, so decode steps are no longer identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infsim.compiled import mypyc_attr
from infsim.core.batch import Batch, StepOutcome
from infsim.core.request import RequestState, Status
from infsim.kvcache.base import NO_MATCH, KVCacheManager, cdiv, max_decode_steps
from infsim.kvcache.counter import BlockCounter
from infsim.scheduling.queues import waiting_queues

if TYPE_CHECKING:
    from infsim.speculative.speculator import Speculator


_NO_LIMIT = 1 << 62  # _decode_limit when nothing finishes


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    max_num_seqs: int
    max_num_batched_tokens: int
    enable_chunked_prefill: bool = True
    long_prefill_token_threshold: int = 0
    scheduling_policy: str = "fcfs"
    max_model_len: int = 1 << 62
    prefill_first: bool = False
    """vLLM V0 with chunked prefill off (`Scheduler._schedule_default`): waiting prompts are
    scheduled first, with the whole token budget, and a step that admits any runs no
    decodes (they wait for the next step). V1, and V0 with chunked prefill on, schedule the
    running requests first and mix prompts into the same step."""


@mypyc_attr(allow_interpreted_subclasses=True)  # disaggregation's roles subclass it
class ContinuousBatchingScheduler:
    """Iteration-level scheduler of one replica. Pure: time enters only as arguments."""

    def __init__(
        self, config: SchedulerConfig, kv: KVCacheManager, speculator: Speculator | None = None
    ) -> None:
        self.config = config
        self.kv = kv
        self.speculator = speculator
        self.waiting = waiting_queues.get(config.scheduling_policy)()
        self.running: list[RequestState] = []
        self.num_preemptions = 0
        # What the pass applying the last step or run learnt about the running set, so
        # the next run is planned and priced without another pass over it: (the list
        # object, its length, the step end, _decode_limit's answer then, Σ computed).
        self._summary: tuple[list[RequestState], int, float, int, int] | None = None

    # -- admission ------------------------------------------------------------------
    def rejection_reason(self, req: RequestState) -> str:
        """Why `req` can never be served by this replica ('' if it can)."""
        cfg = self.config
        total = req.num_prompt_tokens + req.num_output_tokens
        if total > cfg.max_model_len:
            return f"prompt+output {total} tokens > max_model_len {cfg.max_model_len}"
        # The last sampled token's KV is never computed; a last verify step holds k more.
        slots = total - 1
        if self.speculator is not None and req.num_output_tokens > 1:
            slots = min(slots + self.speculator.k, cfg.max_model_len - 1)
        need_blocks = cdiv(slots, self.kv.block_size)
        if need_blocks > self.kv.num_total_blocks:
            return f"needs {need_blocks} KV blocks, replica has {self.kv.num_total_blocks}"
        if not cfg.enable_chunked_prefill and total - 1 > cfg.max_num_batched_tokens:
            return (
                f"prompt+output {total} tokens > max_num_batched_tokens "
                f"{cfg.max_num_batched_tokens} with chunked prefill off"
            )
        return ""

    def add(self, req: RequestState) -> None:
        req.status = Status.WAITING
        self.waiting.add(req)

    @property
    def num_outstanding(self) -> int:
        return len(self.waiting) + len(self.running)

    def evict_all(self) -> list[RequestState]:
        """Empty the scheduler (its replica is lost): the running and waiting requests, in
        that order, with their KV blocks freed; the caller decides what becomes of them."""
        reqs = [*self.running, *self.waiting]
        for req in reqs:
            self.kv.free(req)
        self.running.clear()
        while self.waiting:
            self.waiting.pop()
        return reqs

    def has_work(self) -> bool:
        return bool(self.running) or bool(self.waiting)

    # -- one step -------------------------------------------------------------------
    def schedule(self, now: float, exclude: set[int] | None = None) -> Batch:
        """The next step's batch. `exclude`: ids of running requests already in an
        in-flight batch (pipeline parallelism: vLLM advances their computed tokens when it
        schedules, so they have nothing to compute until that batch returns); they keep
        their seats (`max_num_seqs`) and their place in the running order, and are never
        preemption victims. Difference from vLLM: a long prompt's next chunk waits for its
        previous chunk's batch to return, where vLLM may put consecutive chunks in
        consecutive in-flight batches."""
        running = self.running
        if exclude:
            running = [r for r in running if id(r) not in exclude]
        batch = Batch()
        budget = self.config.max_num_batched_tokens
        if self.config.prefill_first and self.waiting:  # excluded rows keep their seats
            self._schedule_waiting(batch, budget, now)
            if batch.num_admitted:  # a prefill-only step
                self.after_schedule(batch, now)
                return batch
        if self.speculator is not None:
            batch.draft_k = self.speculator.num_drafts(len(running))
        start = 0
        if running is self.running and not batch.draft_k and len(running) <= budget:
            start = self._schedule_decodes(batch, now)
            budget -= start
        if start < len(running):
            budget = self._schedule_running(batch, budget, running, start)
        if not batch.num_preempted and not self.config.prefill_first:
            self._schedule_waiting(batch, budget, now)
        self.after_schedule(batch, now)
        return batch

    def _schedule_decodes(self, batch: Batch, now: float) -> int:
        """The running loop's answer when the summary says every running request is a
        plain decode at `now` and the budget covers them all: one token each, in order,
        with blocks allocated exactly where the loop would (a new token reaching the end of
        the last held block). Returns how many leading requests it scheduled: all of them,
        or up to the first whose allocation fails (a failed allocation changes nothing, so
        `_schedule_running` goes on from there and preempts as usual); 0 when the summary
        does not apply."""
        running = self.running
        summary = self._summary
        if (
            summary is None
            or summary[2] != now
            or summary[0] is not running
            or summary[1] != len(running)
            or not summary[3]
        ):
            return 0
        kv = self.kv
        bs = kv.block_size
        ctxs = [r.num_computed_tokens for r in running]
        m = len(running)
        if type(kv) is BlockCounter:  # a block for each request whose blocks are full
            full_reqs = [r for r in running if r.num_computed_tokens >= r.num_blocks * bs]
            if len(full_reqs) <= kv._num_free:  # all of the loop's allocations succeed
                kv._num_free -= len(full_reqs)
                for r in full_reqs:
                    r.num_blocks += 1
                full: list[int] = []
            else:  # the loop's allocations, to the first that fails
                full = [i for i, r in enumerate(running) if ctxs[i] >= r.num_blocks * bs]
        else:  # where the loop calls allocate (a prefix pool may cache a block it fills)
            full = [i for i, r in enumerate(running) if ctxs[i] + 1 >= r.num_blocks * bs]
        for i in full:
            if not kv.allocate(running[i], 1, NO_MATCH, 0):
                m = i
                break
        if m < len(running):
            del ctxs[m:]
            context = sum(ctxs)
            batch.requests.extend(running[:m])
        else:
            context = summary[4]
            batch.requests.extend(running)
            batch.num_decode_rows = m
            batch.decode_limit = summary[3]
        batch.num_context_tokens = ctxs
        batch.num_new_tokens = [1] * m
        batch.num_batched_tokens = batch.num_sampled = batch.attn_rows = m
        batch.attn_pairs = batch.attn_kv_tokens = context + m
        return m

    def _schedule_running(
        self, batch: Batch, budget: int, running: list[RequestState], start: int = 0
    ) -> int:
        """Schedule `running` (the running requests not excluded, in order) from index
        `start` within `budget` tokens, preempting from the back when KV blocks run out."""
        kv = self.kv
        block_size = kv.block_size
        threshold = self.config.long_prefill_token_threshold
        max_model_len = self.config.max_model_len
        draft_k = batch.draft_k
        # Batch.add inlined: this loop runs once per running request per step, with the
        # batch's running sums in locals (`_store`) until the loop ends or a row leaves.
        reqs, news, ctxs = batch.requests, batch.num_new_tokens, batch.num_context_tokens
        pairs, kv_tokens, rows = batch.attn_pairs, batch.attn_kv_tokens, batch.attn_rows
        tokens, sampled, spec = batch.num_batched_tokens, batch.num_sampled, batch.num_spec_tokens
        i = start
        while i < len(running) and budget > 0:
            req = running[i]
            computed = req.num_computed_tokens
            remaining = n = req.num_prompt_tokens + req.num_output_done - computed
            if draft_k and n == 1 and req.num_output_done:  # decoding: verify k drafts
                n = min(1 + draft_k, max_model_len - 1 - computed)
            if 0 < threshold < n:
                n = threshold
            if n > budget:
                n = budget
            # Hot path: the new tokens stay inside the last held block (which therefore
            # does not fill up either), so there is nothing to allocate or cache. Drafts
            # past num_tokens get slots as lookahead, never cached (they may be rejected).
            if computed + n < req.num_blocks * block_size or kv.allocate(
                req, min(n, remaining), NO_MATCH, max(0, n - remaining)
            ):
                reqs.append(req)
                news.append(n)
                ctxs.append(computed)
                pairs += n * computed + n * (n + 1) // 2
                kv_tokens += computed + n
                rows += 1
                tokens += n
                if n >= remaining:
                    sampled += 1
                    if n > remaining:
                        spec += n - remaining
                budget -= n
                i += 1
                continue
            victim = self.waiting.victim(running)
            if victim in reqs:  # priority policy may pick a scheduled one
                budget += news[reqs.index(victim)]
                _store(batch, pairs, kv_tokens, rows, tokens, sampled, spec)
                batch.remove(victim)
                pairs, kv_tokens, rows = batch.attn_pairs, batch.attn_kv_tokens, batch.attn_rows
                tokens, sampled = batch.num_batched_tokens, batch.num_sampled
                spec = batch.num_spec_tokens
                i -= 1
            self._preempt(victim)
            if running is not self.running:  # a filtered view: the victim leaves it too
                running.remove(victim)
            batch.num_preempted += 1
            if victim is req:  # nothing left to preempt for it: stop, as vLLM does
                break
        _store(batch, pairs, kv_tokens, rows, tokens, sampled, spec)
        return budget

    def _preempt(self, req: RequestState) -> None:
        self.running.remove(req)
        self.kv.free(req)
        req.num_computed_tokens = 0
        req.num_preemptions += 1
        req.status = Status.WAITING
        self.num_preemptions += 1
        self.waiting.prepend(req)

    def _schedule_waiting(self, batch: Batch, budget: int, now: float) -> None:
        cfg, kv, waiting = self.config, self.kv, self.waiting
        while waiting and budget > 0 and len(self.running) < cfg.max_num_seqs:
            req = waiting.peek()
            if req.num_computed_tokens:  # its KV was transferred in (disaggregated prefill)
                match, num_hit = NO_MATCH, req.num_computed_tokens
            else:
                match = kv.match_prefix(req)
                num_hit = match.num_tokens(kv.block_size)
            n = req.num_tokens - num_hit
            threshold = cfg.long_prefill_token_threshold
            if 0 < threshold < n:
                n = threshold
            if not cfg.enable_chunked_prefill and n > budget:
                break  # the whole (capped) prompt must fit; FCFS: nobody jumps the queue
            n = min(n, budget)
            if not kv.allocate(req, n, match):
                break
            waiting.pop()
            if req.first_scheduled_s < 0:
                req.first_scheduled_s = now
                req.num_cached_tokens = num_hit
            req.num_computed_tokens = num_hit
            req.status = Status.RUNNING
            self.running.append(req)
            batch.add(req, n)
            batch.num_admitted += 1
            budget -= n

    def on_batch_done(self, batch: Batch, start_s: float, end_s: float) -> StepOutcome:
        """Apply a step that ran from start_s to end_s; return what it produced.

        A row whose computed tokens reach the request's tokens sampled one (the first is
        the TTFT event); a shorter row was a prefill chunk. With speculative decoding a row
        ending d > 0 tokens past them verified d drafts: a of them are accepted (drawn by
        the speculator, rows in batch order), its computed tokens roll back to
        num_tokens + a and it emits a + 1 tokens (at most its remaining output) at end_s.
        """
        accepted = None
        num_drafts = 0
        if self.speculator is not None:
            self.speculator.count_steps(batch.draft_k, 1)
            if batch.num_spec_tokens:
                drafts = [
                    d
                    for req, n in zip(batch.requests, batch.num_new_tokens, strict=True)
                    if (d := req.num_computed_tokens + n - req.num_tokens) > 0
                ]
                num_drafts = sum(drafts)
                accepted = iter(self.speculator.accept(drafts))
        finished: list[RequestState] = []
        num_first = num_step_itl = num_accepted = 0
        itl_other: list[float] = []
        # The summary of the running set after the step (see _decode_limit): every row
        # that sampled is a plain decode now; a prefill chunk is not (limit 0).
        limit, context = _NO_LIMIT, 0
        num_running = len(self.running)
        reqs, news = batch.requests, batch.num_new_tokens
        m = batch.num_decode_rows
        if m and batch.decode_limit > 1:  # a decode block of which nobody finishes
            num_step_itl = _apply_decode_rows(reqs if m == len(reqs) else reqs[:m],
                                              start_s, end_s, itl_other)  # fmt: skip
            limit = batch.decode_limit - 1
            context = sum(batch.num_context_tokens[:m]) + m
            reqs, news = reqs[m:], news[m:]
        for req, n in zip(reqs, news, strict=True):
            end = req.num_computed_tokens + n
            num_tokens = req.num_prompt_tokens + req.num_output_done
            if end < num_tokens:
                req.num_computed_tokens = end
                limit = 0
                context += end
                continue  # a prefill chunk: no token sampled
            emitted = 1
            if end > num_tokens:  # verified drafts
                a = next(accepted)  # type: ignore[arg-type]
                num_accepted += a
                end = num_tokens + a  # rejected drafts' slots are rewritten next step
                emitted = min(a + 1, req.num_output_tokens - req.num_output_done)
            req.num_computed_tokens = end
            if req.num_output_done == 0:
                req.first_token_s = end_s
                num_first += 1
            elif req.last_emit_s == start_s:
                num_step_itl += 1
            else:
                itl_other.append(end_s - req.last_emit_s)
            req.num_output_done += emitted
            req.last_emit_s = end_s
            remaining = req.num_output_tokens - req.num_output_done
            if not remaining:
                finished.append(req)
                continue
            context += end
            if remaining < limit:
                limit = remaining
        if finished:
            self._finish(finished, end_s)
        if len(batch.requests) == num_running:  # the batch was the whole running set
            self._set_summary(end_s, limit, context)
        else:  # some running requests sat the step out: the next plan looks at them
            self._summary = None
        counts = [num_step_itl] if num_step_itl else []
        steps = [end_s - start_s] if num_step_itl else []
        self.after_apply(end_s)
        return StepOutcome(finished, num_first, steps, counts, itl_other, num_drafts, num_accepted)

    def _finish(self, finished: list[RequestState], end_s: float) -> None:
        for req in finished:
            req.status = Status.FINISHED
            req.finish_s = end_s
            req.block_keys = None  # registered: only admission and allocation read them
        self.release_finished(finished)
        if len(finished) <= 8:  # a new list (the summary tells lists apart by identity)
            running = self.running.copy()
            for req in finished:
                running.remove(req)  # identity first: requests define no __eq__
            self.running = running
        else:
            done = set(map(id, finished))
            self.running = [r for r in self.running if id(r) not in done]

    # -- hooks for schedulers of other roles (disaggregation: disagg/schedulers.py) ----
    def release_finished(self, finished: list[RequestState]) -> None:
        """What becomes of finished requests' KV blocks: freed (a prefill-only role keeps
        them until they are sent)."""
        for req in finished:
            self.kv.free(req)

    def after_schedule(self, batch: Batch, now: float) -> None:
        """Called at the end of `schedule` (nothing by default)."""

    def after_apply(self, end_s: float) -> None:
        """Called after a step or a decode run is applied (nothing by default)."""

    # -- fast-forward of pure decode steps -------------------------------------------
    def plan_decode_run(self, now: float) -> int:
        """Steps of a pure-decode run that `schedule(now)` would start, without building it.

        Nothing waits, every running request is decoding (emitted at `now`, one token
        left to compute) and the token budget covers them all: the next step schedules
        exactly one token each, and so do the following ones until a request finishes or
        KV blocks run out. Returns 0 when that is not certain (then call `schedule`), and
        whenever the step would propose speculative drafts.
        """
        running = self.running
        if self.waiting or not running or len(running) > self.config.max_num_batched_tokens:
            return 0
        if self.speculator is not None and self.speculator.num_drafts(len(running)):
            return 0
        limit = self._decode_limit(now)
        return max_decode_steps(self.kv, running, limit) if limit else 0

    def decode_run_limit(self, batch: Batch, now: float) -> int:
        """How many identical pure-decode steps, starting with `batch`, are certain.

        0 if `batch` is not pure decode. Otherwise k ≥ 1: the run stops at the first
        step that finishes a request, and before the first step whose KV blocks would
        not fit (that step must go through `schedule` to preempt). Requests still waiting
        stay blocked through the run: the running set, the token budget and the
        hit-adjusted KV need of the waiting head cannot loosen until a request finishes.
        """
        running = self.running
        if (
            batch.draft_k
            or batch.num_admitted
            or batch.num_preempted
            or batch.num_batched_tokens != len(running)
            or batch.num_sampled != len(running)
        ):
            return 0
        limit = self._decode_limit(now)
        return max(1, max_decode_steps(self.kv, running, limit)) if limit else 0

    def _set_summary(self, end_s: float, limit: int, context: int) -> None:
        running = self.running
        self._summary = (running, len(running), end_s, limit, context)

    def _decode_limit(self, now: float) -> int:
        """Steps until the first running request finishes, or 0 if some request is not a
        plain decode (first token pending, resuming after preemption, prefill left).

        Answered from the summary that applying the last step or run left when the
        running set is still that one (same list, same length: admissions, preemptions
        and finishes all change one or the other) and `now` is that step's end; else by
        a pass over the running requests."""
        summary = self._summary
        if (
            summary is not None
            and summary[2] == now
            and summary[0] is self.running
            and summary[1] == len(self.running)
        ):
            return summary[3]
        return self._scan_decode_limit(now)

    def _scan_decode_limit(self, now: float) -> int:
        """`_decode_limit` by a pass over the running requests."""
        limit = _NO_LIMIT
        for r in self.running:
            done = r.num_output_done
            if (
                done == 0
                or r.last_emit_s != now
                or r.num_computed_tokens != r.num_prompt_tokens + done - 1
            ):
                return 0
            remaining = r.num_output_tokens - done
            if remaining < limit:
                limit = remaining
        return limit

    def decode_run_context_tokens(self) -> int:
        """The running requests' KV context before a decode run starts (Σ computed
        tokens), which prices the run (`CostModel.decode_run_times_s`); from the summary
        of the last step or run when the running set is still that one."""
        summary = self._summary
        if summary is not None and summary[0] is self.running and summary[1] == len(self.running):
            return summary[4]
        return sum(r.num_computed_tokens for r in self.running)

    def apply_decode_run(self, num_steps: int, end_s: float) -> StepOutcome:
        """Apply `num_steps` pure-decode steps, the last ending at `end_s`.

        Every running request emits one token per step, so the run's ITL samples are its
        step gaps times the number of running requests; the caller, who knows the step
        end times, records them (the outcome carries none).
        """
        kv = self.kv
        bs = kv.block_size
        if self.speculator is not None:  # a run only happens while drafting is switched off
            self.speculator.count_steps(0, num_steps)
        running = self.running
        summary = self._summary
        if (
            summary is not None
            and summary[0] is running
            and summary[1] == len(running)
            and summary[3] >= num_steps
        ):  # the summary before the run tells whether anybody finishes
            if type(kv) is BlockCounter:  # its allocate inlined: blocks for `computed`
                grown = 0
                for req in running:
                    computed = req.num_computed_tokens + num_steps
                    if computed > req.num_blocks * bs:
                        need = -(-computed // bs) - req.num_blocks
                        req.num_blocks += need
                        grown += need
                    req.num_computed_tokens = computed
                    req.num_output_done += num_steps
                    req.last_emit_s = end_s
                if grown > kv._num_free:
                    raise RuntimeError(f"decode run over-allocated {grown} KV blocks")
                kv._num_free -= grown
            else:
                for req in running:
                    computed = req.num_computed_tokens + num_steps
                    if computed >= req.num_blocks * bs:
                        self._grow(req, num_steps, computed)
                    req.num_computed_tokens = computed
                    req.num_output_done += num_steps
                    req.last_emit_s = end_s
            context = summary[4] + num_steps * len(running)
            if summary[3] > num_steps:  # nobody: the summary follows from the one before
                self._set_summary(end_s, summary[3] - num_steps, context)
                self.after_apply(end_s)
                return StepOutcome([], 0, [], [], [])
            ended = [r for r in running if r.num_output_done == r.num_output_tokens]
            self._finish(ended, end_s)
            left = [r.num_output_tokens - r.num_output_done for r in self.running]
            context -= sum([r.num_computed_tokens for r in ended])
            self._set_summary(end_s, min(left, default=_NO_LIMIT), context)
            self.after_apply(end_s)
            return StepOutcome(ended, 0, [], [], [])
        finished: list[RequestState] = []
        limit, context = _NO_LIMIT, 0  # the summary after the run (all plain decodes)
        for req in running:
            # Step 1's blocks were allocated by schedule(); the limit guarantees the rest.
            computed = req.num_computed_tokens + num_steps
            if computed >= req.num_blocks * bs:
                self._grow(req, num_steps, computed)
            req.num_computed_tokens = computed
            done = req.num_output_done = req.num_output_done + num_steps
            req.last_emit_s = end_s
            remaining = req.num_output_tokens - done
            if not remaining:
                finished.append(req)
                continue
            context += computed
            if remaining < limit:
                limit = remaining
        if finished:
            self._finish(finished, end_s)
        self._set_summary(end_s, limit, context)
        self.after_apply(end_s)
        return StepOutcome(finished, 0, [], [], [])

    def _grow(self, req: RequestState, num_steps: int, computed: int) -> None:
        """Blocks for a decode run's `num_steps` tokens of `req` (`computed` after them);
        the run's limit guarantees they fit. A block counter's `allocate` inlined."""
        kv = self.kv
        if type(kv) is BlockCounter:
            need = -(-computed // kv.block_size) - req.num_blocks
            if need <= kv._num_free:
                if need > 0:
                    kv._num_free -= need
                    req.num_blocks += need
                return
        elif kv.allocate(req, num_steps):
            return
        raise RuntimeError(f"decode run over-allocated KV blocks for {req!r}")


def _store(
    batch: Batch, pairs: int, kv_tokens: int, rows: int, tokens: int, sampled: int, spec: int
) -> None:
    """Write `_schedule_running`'s running sums back to the batch."""
    batch.attn_pairs, batch.attn_kv_tokens, batch.attn_rows = pairs, kv_tokens, rows
    batch.num_batched_tokens, batch.num_sampled, batch.num_spec_tokens = tokens, sampled, spec


def _apply_decode_rows(
    rows: list[RequestState], start_s: float, end_s: float, itl_other: list[float]
) -> int:
    """`on_batch_done` for rows that each decoded one token and emitted before (none of
    them finishing): one token each at `end_s`. Returns how many had emitted at `start_s`
    (the step's ITL samples); the others' gaps go to `itl_other`, in row order."""
    num_other = len(itl_other)
    for req in rows:
        req.num_computed_tokens += 1
        req.num_output_done += 1
        if req.last_emit_s != start_s:
            itl_other.append(end_s - req.last_emit_s)
        req.last_emit_s = end_s
    return len(rows) - (len(itl_other) - num_other)
