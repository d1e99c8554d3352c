"""Replica runtime: one engine's loop in simulated time. Wiring only, no policy.

    loop:  no work → sleep until a request is submitted
           batch = scheduler.schedule(now)                      (pure)
           k = scheduler.decode_run_limit(batch, now)           (pure)
           k ≤ 1: step time from the cost model, wait it, apply the step
           k > 1: price k decode steps at once and wait for the last step end; a new
                  request interrupts the wait, and then only the steps already finished
                  plus the one in progress happen (a running step takes no new work)

The replica keeps its own clock `clock_s` equal to the exact step end times (sums of step
durations), so a fast-forwarded run lands on the same floats as stepping one by one.

Async scheduling (vLLM ≥ 0.14's default, `engine.async_scheduling`): the engine core
decides step j+1 right after launching step j, before step j's outputs are back
(`EngineCore.step_with_batch_queue`, a batch queue of depth 2). So the decision for step
j+1 sees the requests that reached the engine before step j *started*; one arriving while
step j runs first enters step j+2, one step later than with synchronous scheduling. The
loop models this with an inbox: a request submitted while a step is in flight waits there,
and each decision releases the inbox requests submitted before the step that just ended
had started (`_release_inbox`; steps are counted, so ties at a step boundary follow event
order: a trace arrival at a step end comes first, a closed-loop send caused by that step's
outputs comes after the next step was decided, as in vLLM). Outputs are unchanged: step
j's tokens are emitted at its end (vLLM processes them while step j+1 runs). When the step
vLLM decided ahead would have been empty (nothing else to schedule), the engine decides
again at once, so the inbox is released whole. Not modelled: a request finishing in step j
still holds its batch slot and KV blocks in vLLM's decision for step j+1 (one step,
~1/output_len of its lifetime).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import simpy
from simpy.events import PENDING

from infsim.compiled import mypyc_attr
from infsim.core.batch import StepOutcome
from infsim.core.request import RequestState, Status
from infsim.cost.base import CostModel
from infsim.cost.config import HostOverhead
from infsim.cost.noise import SpeedNoise
from infsim.frontend.api_server import ApiServers, num_ends_before
from infsim.metrics.recorder import Recorder
from infsim.scheduling.continuous import ContinuousBatchingScheduler
from infsim.sim.events import urgent_event

STOP = "stop"  # interrupt cause: the replica is lost (`Replica.stop`)
NO_RUN: list[float] = []  # `_run_ends` when no run is in flight (never appended to)


@dataclass(frozen=True, slots=True)
class OutputLag:
    """vLLM V0's async output processing (on by default from 0.6.0 until V0's removal;
    `ModelConfig.verify_async_output_proc`): a step's outputs are processed, the first
    token stamped and finished requests returned, in a callback that the *next* step's
    model runner calls once that step is scheduled, its inputs prepared and handed to the
    workers and its forward launched (`ModelRunner.execute_model`: `async_callback()`
    before sampling). So every output reaches the client one host step after its step
    ended: `host.step_s(width, num_workers)`, the same per-step host work the cost model
    adds to each step. When nothing follows (the engine goes idle), vLLM processes the
    outputs at once after an empty schedule; that case is priced the same (it moves only a
    lone request's last token)."""

    host: HostOverhead
    num_workers: int


@mypyc_attr(allow_interpreted_subclasses=True)  # PipelinedReplica subclasses it
class Replica:
    def __init__(  # noqa: PLR0913
        self,
        env: simpy.Environment,
        replica_id: int,
        scheduler: ContinuousBatchingScheduler,
        cost_model: CostModel,
        recorder: Recorder,
        fast_forward: bool = True,
        on_finished: Callable[[RequestState], None] | None = None,
        noise: SpeedNoise | None = None,
        async_scheduling: bool = False,
        frontend: ApiServers | None = None,
        egress: bool = True,
        output_lag: OutputLag | None = None,
    ) -> None:
        self.env = env
        self.replica_id = replica_id
        self.scheduler = scheduler
        self.cost_model = cost_model
        self.recorder = recorder
        self.fast_forward = fast_forward
        self.on_finished = on_finished  # e.g. a closed-loop client freeing a slot
        self.noise = noise  # host speed swings: a factor on each step's duration
        self.async_scheduling = async_scheduling
        self.inbox: list[RequestState] = []  # submitted during the step in flight (async)
        self._inbox_seen: list[int] = []  # steps started when each was submitted
        self._num_started = 0  # steps started so far (run steps counted as applied)
        self._run_ends: Any = NO_RUN  # the fast-forwarded run's step ends, if one is in flight
        self.frontend = frontend  # the API servers in front of the engine (None = none)
        self.egress = frontend is not None and egress  # delay token delivery to the client
        self.output_lag = output_lag  # V0 async output processing (None: outputs at step end)
        self.in_frontend: list[RequestState] = []  # on the request path, not yet in the engine
        self._run_seqs = 0  # width of the run in flight
        self._run_streamed = 0  # its steps already streamed out (front end)
        self.num_outstanding_tokens = 0
        self._wake: simpy.Event | None = None  # set while idle
        self._in_run = False  # True while waiting on a fast-forwarded run
        self.clock_s = env.now  # a replica may start serving mid-run (fleet scale-up)
        self.stopped = False
        self.process = env.process(self._loop())

    # -- called by the arrival process ----------------------------------------------
    def submit(self, req: RequestState) -> bool:
        """Queue `req`, or reject it if this replica can never serve it."""
        req.replica_id = self.replica_id
        reason = self.scheduler.rejection_reason(req)
        if reason:
            req.status = Status.REJECTED
            req.reject_reason = reason
            return False
        self.num_outstanding_tokens += req.num_prompt_tokens + req.num_output_tokens
        if self.frontend is not None:
            self._stream_run(num_ends_before(self._run_ends, self.env.now))
            done = self.frontend.admit(self.env.now, req.num_prompt_tokens)
            self.in_frontend.append(req)
            urgent_event(self.env, done - self.env.now).callbacks.append(
                lambda _event: self._enter(req)
            )
            return True
        self._enter_engine(req)
        return True

    def _enter(self, req: RequestState) -> None:
        """`req` is through the API server (unless the replica was lost meanwhile)."""
        if self.stopped or req not in self.in_frontend:
            return
        self.in_frontend.remove(req)
        self._enter_engine(req)

    def _enter_engine(self, req: RequestState) -> None:
        if self.async_scheduling and self._wake is None:  # a step is in flight
            started = self._num_started
            if len(self._run_ends):  # run steps start at the previous one's end (URGENT ties first)
                started += 1 + num_ends_before(self._run_ends, self.env.now)
            self.inbox.append(req)
            self._inbox_seen.append(started)
        else:
            self.scheduler.add(req)
        self.wake()

    @property
    def num_outstanding(self) -> int:
        """Requests submitted and not finished: scheduled, waiting, or in the inbox."""
        return self.scheduler.num_outstanding + len(self.inbox) + len(self.in_frontend)

    @property
    def num_waiting(self) -> int:
        return len(self.scheduler.waiting) + len(self.inbox) + len(self.in_frontend)

    def take_unfinished(self) -> list[RequestState]:
        """Empty the replica of its unfinished requests (it is lost): running, waiting and
        inbox, with their KV blocks freed; the caller decides what becomes of them."""
        pending = [*self.inbox, *self.in_frontend]  # not admitted yet: they hold no blocks
        reqs = [*self.scheduler.evict_all(), *pending]
        self.inbox.clear()
        self._inbox_seen.clear()
        self.in_frontend.clear()
        return reqs

    def _release_inbox(self) -> None:
        """Hand the scheduler the inbox requests it would see at this decision: those
        submitted before the step that just ended had started (all of them if nothing else
        could be scheduled, as vLLM then decides again at once)."""
        limit = self._num_started if self.scheduler.has_work() else 1 << 62
        n = 0
        for seen in self._inbox_seen:
            if seen >= limit:
                break
            n += 1
        if n:
            for req in self.inbox[:n]:
                self.scheduler.add(req)
            del self.inbox[:n], self._inbox_seen[:n]

    def wake(self) -> None:
        """New work: wake the idle loop, or end a fast-forwarded run at the step in
        progress so the next step sees it (also used by disaggregation's KV hand-offs)."""
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()
        elif self._in_run:  # resume the loop now (before a step ending now), as
            self._in_run = False  # `process.interrupt()` would, without an exception
            urgent_event(self.env, 0.0).callbacks.append(self._end_run_wait)

    def _end_run_wait(self, event: simpy.Event) -> None:
        """`simpy.Interruption._interrupt` for `wake`'s event: the loop, still waiting on
        its run's timeout (unless it ended meanwhile: lost), resumes from it now; `_in_run`
        False tells it why. Same events in the same order as an interrupt, ~4 µs less."""
        process = self.process
        if process._value is not PENDING:
            return
        process._target.callbacks.remove(process._resume)
        process._resume(event)

    # -- the loop -------------------------------------------------------------------
    def stop(self) -> None:
        """The replica is lost (fleet failure): its loop ends for good, the step in
        progress never completes; its requests stay in the scheduler for the caller."""
        self.stopped = True
        if self._wake is None:  # stepping: end the wait (an idle loop just never wakes)
            self.process.interrupt(STOP)

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        env, sched = self.env, self.scheduler
        try:
            while True:
                if self.inbox:
                    self._release_inbox()
                while not sched.has_work():  # a wake-up may bring unschedulable work
                    self._wake = env.event()
                    yield self._wake
                    self._wake = None
                    self.clock_s = env.now
                start = self.clock_s
                if not self.inbox:  # else one step: the inbox joins the decision after it
                    k = sched.plan_decode_run(start) if self.fast_forward else 0
                else:
                    k = 0
                if k:
                    yield from self._decode_run(len(sched.running), start, k)
                    continue
                batch = sched.schedule(start)
                if not batch.requests:
                    if not batch.num_preempted:
                        raise RuntimeError(
                            f"replica {self.replica_id}: work but nothing to schedule"
                        )
                    continue  # a request preempted itself: vLLM's step is empty; schedule again
                k = sched.decode_run_limit(batch, start) if self.fast_forward else 0
                if k > 1 and not self.inbox:
                    yield from self._decode_run(batch.num_seqs, start, k)
                    continue
                duration = self.cost_model.step_time_s(batch)
                if self.noise is not None:
                    duration *= self.noise.factor(start)
                end = start + duration
                self._num_started += 1
                yield env.timeout(end - env.now)
                self.clock_s = end
                outcome = sched.on_batch_done(batch, start, end)
                if self.frontend is not None or self.output_lag is not None:
                    self._stream_out(batch, end, outcome)
                self._record(start, end, 1, batch.num_batched_tokens, batch.num_preempted, outcome,
                             batch.num_seqs)  # fmt: skip
        except simpy.Interrupt:  # only `stop` interrupts a step
            if not self.stopped:
                raise

    def _decode_run(self, num_seqs: int, start: float, k: int) -> Generator[simpy.Event, Any, None]:
        env, sched = self.env, self.scheduler
        context = sched.decode_run_context_tokens()
        durations: Any = self.cost_model.decode_run_times_s(num_seqs, context, k)
        # Sequential sums (start + d0, + d1, ...; not start + sum of the durations before)
        # land on the same floats as single steps.
        ends: Any  # a list, or for a run priced by numpy a float64 array (no float per step)
        if self.noise is not None:  # each step at its own start's speed, as when stepping
            ends, end = [], start
            for duration in durations if type(durations) is list else durations.tolist():
                end = end + duration * self.noise.factor(end)
                ends.append(end)
        elif type(durations) is list:
            ends = list(accumulate(durations, initial=start))
            del ends[0]
        else:  # start + d0, + d1, ...: numpy's cumulative sum adds left to right
            durations[0] += start
            ends = durations.cumsum(out=durations)
        self._in_run = True
        self._run_ends, self._run_seqs, self._run_streamed = ends, num_seqs, 0
        yield env.timeout(float(ends[-1]) - env.now)  # (`stop` interrupts it: lost)
        if not self._in_run:  # a request arrived (`wake`): finish the step in progress, stop
            if self.stopped:  # lost meanwhile: end the loop as its interrupt would
                raise simpy.Interrupt(STOP)
            # Steps ending strictly before now are done; the one ending at or after now
            # is in progress. An arrival exactly at a step end is seen by the next step,
            # as when stepping (its arrival event was scheduled before that step's end).
            # With async scheduling the step after it is already decided, so it runs too.
            ahead = 2 if self.async_scheduling else 1
            k = min(num_ends_before(ends, env.now) + ahead, k)
            if ends[k - 1] > env.now:
                yield env.timeout(float(ends[k - 1]) - env.now)
        self._in_run = False
        last = float(ends[k - 1])
        self.clock_s = last
        self._num_started += k
        outcome = sched.apply_decode_run(k, last)
        self._stream_run(k)
        self._run_ends = NO_RUN
        if outcome.finished and (self.egress or self.output_lag is not None):
            delay = self._output_delay_s(num_seqs, num_seqs)
            for req in outcome.finished:
                req.finish_s += delay
        self.recorder.on_decode_run(start, ends, k, num_seqs)
        self._record(start, last, k, num_seqs, 0, outcome, num_seqs)

    def _stream_run(self, num_steps: int) -> None:
        """Stream out the first `num_steps` steps of the run in flight (those not streamed
        yet), each at its own end, as stepping would: the API servers' load at a request's
        arrival then sees the same steps either way."""
        done = self._run_streamed
        if self.frontend is None or num_steps <= done:
            return
        self.frontend.on_stream_steps(self._run_ends[done:num_steps], self._run_seqs)
        self._run_streamed = num_steps

    def _stream_out(self, batch, end: float, outcome: StepOutcome) -> None:
        """The API servers stream the step's tokens; the client sees each of them about
        `egress_s` after the step ends, and under V0's async output processing one host
        step later still (`OutputLag`). Applied to the first and the last token: TTFT and
        E2E; the gaps between tokens keep the engine's cadence."""
        num_tokens = batch.num_sampled + outcome.num_accepted_tokens
        if self.frontend is not None:
            self.frontend.on_stream(end, 1, num_tokens)
        if not num_tokens or not (self.egress or self.output_lag is not None):
            return
        delay = self._output_delay_s(num_tokens, batch.num_seqs)
        if outcome.num_first_tokens:  # else no row's first token came in this step
            # (never in the scheduler's decode block: its rows had emitted before)
            m = batch.num_decode_rows
            for req in batch.requests[m:] if m else batch.requests:
                if req.first_token_s == end:
                    req.first_token_s += delay
        for req in outcome.finished:
            if req.finish_s == end:
                req.finish_s += delay

    def _output_delay_s(self, num_tokens: int, num_seqs: int) -> float:
        """From a step's end to the client seeing its tokens: the API servers' egress plus,
        under V0's async output processing, the next step's host work."""
        lag, frontend = self.output_lag, self.frontend
        lag_s = 0.0 if lag is None else lag.host.step_s(num_seqs, lag.num_workers)
        if frontend is None or not self.egress:
            return lag_s  # (never called with neither: nothing to delay)
        egress_s = frontend.costs.egress_s(num_tokens)
        return egress_s if lag is None else egress_s + lag_s

    def _record(
        self,
        start: float,
        end: float,
        num_steps: int,
        num_tokens: int,
        num_preempted: int,
        outcome: StepOutcome,
        num_seqs: int,
    ) -> None:
        sched = self.scheduler
        for req in outcome.finished:
            self.num_outstanding_tokens -= req.num_prompt_tokens + req.num_output_tokens
            if self.on_finished is not None:
                self.on_finished(req)
        kv = sched.kv
        used = kv.num_total_blocks - kv.num_free_blocks
        row = (  # a StepRow's fields, as a plain tuple (cheaper to build)
            self.replica_id,
            start,
            end,
            num_steps,
            num_tokens,
            len(sched.running),
            len(sched.waiting) + len(self.inbox),
            num_preempted,
            used,
            used / kv.num_total_blocks,
            outcome.num_draft_tokens,
            outcome.num_accepted_tokens,
            num_seqs,
        )
        self.recorder.on_step(row)
        self.recorder.on_outcome(outcome)
