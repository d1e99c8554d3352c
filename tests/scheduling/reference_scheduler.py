"""The continuous-batching scheduler as it was before the decode-block fast paths (commit
8db8246's `infsim/scheduling/continuous.py`, docstrings trimmed): one Python pass per
running request in every `schedule`, `on_batch_done` and `apply_decode_run`, no running
summary used by them. The oracle of `tests/properties/test_prop_decode_block.py`.

Only the five methods the fast paths changed are the old ones here (`schedule`,
`_schedule_running`, `on_batch_done`, `_finish`, `apply_decode_run`); the rest is
inherited unchanged from the current scheduler, where it is the same code.
"""

from __future__ import annotations

from infsim.core.batch import Batch, StepOutcome
from infsim.core.request import RequestState, Status
from infsim.kvcache.base import NO_MATCH
from infsim.scheduling.continuous import _NO_LIMIT, ContinuousBatchingScheduler


class ReferenceScheduler(ContinuousBatchingScheduler):
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
        if self.speculator is not None:
            batch.draft_k = self.speculator.num_drafts(len(running))
        budget = self.config.max_num_batched_tokens
        budget = self._schedule_running(batch, budget, running)
        if not batch.num_preempted:
            self._schedule_waiting(batch, budget, now)
        self.after_schedule(batch, now)
        return batch

    def _schedule_running(self, batch: Batch, budget: int, running: list[RequestState]) -> int:
        """Schedule `running` (the running requests not excluded, in order) within
        `budget` tokens, preempting from the back when KV blocks run out."""
        kv = self.kv
        block_size = kv.block_size
        threshold = self.config.long_prefill_token_threshold
        draft_k = batch.draft_k
        # Batch.add inlined: this loop runs once per running request per step.
        reqs, news, ctxs = batch.requests, batch.num_new_tokens, batch.num_context_tokens
        i = 0
        while i < len(running) and budget > 0:
            req = running[i]
            computed = req.num_computed_tokens
            remaining = n = req.num_prompt_tokens + req.num_output_done - computed
            if draft_k and n == 1 and req.num_output_done:  # decoding: verify k drafts
                n = min(1 + draft_k, self.config.max_model_len - 1 - computed)
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
                batch.num_batched_tokens += n
                if n >= remaining:
                    batch.num_sampled += 1
                    if n > remaining:
                        batch.num_spec_tokens += n - remaining
                budget -= n
                i += 1
                continue
            victim = self.waiting.victim(running)
            if victim in reqs:  # priority policy may pick a scheduled one
                budget += news[reqs.index(victim)]
                batch.remove(victim)
                i -= 1
            self._preempt(victim)
            if running is not self.running:  # a filtered view: the victim leaves it too
                running.remove(victim)
            batch.num_preempted += 1
            if victim is req:  # nothing left to preempt for it: stop, as vLLM does
                break
        return budget

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
        for req, n in zip(batch.requests, batch.num_new_tokens, strict=True):
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
        self.release_finished(finished)
        done = set(map(id, finished))
        self.running = [r for r in self.running if id(r) not in done]

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
        finished: list[RequestState] = []
        limit, context = _NO_LIMIT, 0  # the summary after the run (all plain decodes)
        for req in self.running:
            # Step 1's blocks were allocated by schedule(); the limit guarantees the rest.
            computed = req.num_computed_tokens + num_steps
            if computed >= req.num_blocks * bs and not kv.allocate(req, num_steps):
                raise RuntimeError(f"decode run over-allocated KV blocks for {req!r}")
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
