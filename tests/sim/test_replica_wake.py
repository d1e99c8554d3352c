"""A request arriving during a fast-forwarded run resumes the replica's loop through an
URGENT event instead of a simpy interrupt (infsim/sim/replica.py `wake`): the same steps,
the same outputs and the same end of a lost replica as with the interrupt."""

from __future__ import annotations

from bisect import bisect_left

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.core.request import RequestState
from infsim.kvcache.counter import BlockCounter
from infsim.metrics.recorder import Recorder
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig
from infsim.sim.replica import Replica


class InterruptedReplica(Replica):
    """The replica as it was: `wake` interrupts the run's wait (`_decode_run` as then)."""

    def wake(self) -> None:
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()
        elif self._in_run:
            self._in_run = False
            self.process.interrupt()

    def _decode_run(self, num_seqs, start, k):
        env, sched = self.env, self.scheduler
        context = sched.decode_run_context_tokens()
        durations = self.cost_model.decode_run_times_s(num_seqs, context, k)
        ends, end = [], start
        for duration in durations:
            end = end + duration
            ends.append(end)
        self._in_run = True
        self._run_ends, self._run_seqs, self._run_streamed = ends, num_seqs, 0
        try:
            yield env.timeout(ends[-1] - env.now)
        except simpy.Interrupt:
            if self.stopped:
                raise
            ahead = 2 if self.async_scheduling else 1
            k = min(bisect_left(ends, env.now) + ahead, k)
            if ends[k - 1] > env.now:
                yield env.timeout(ends[k - 1] - env.now)
        self._in_run = False
        self.clock_s = ends[k - 1]
        self._num_started += k
        outcome = sched.apply_decode_run(k, ends[k - 1])
        self._stream_run(k)
        self._run_ends = []
        self.recorder.on_decode_run(start, ends, k, num_seqs)
        self._record(start, ends[k - 1], k, num_seqs, 0, outcome, num_seqs)


TICK = 2.0**-7  # dyadic times: sums are exact, so arrivals land on step ends too


class GrowingCost:
    """Steps of one or two ticks, by the batch's context: runs of unequal steps whose ends
    fall on the tick grid of the arrivals."""

    def step_time_s(self, batch) -> float:
        return TICK * (1 + sum(batch.num_context_tokens) % 2)

    def decode_run_times_s(self, num_seqs: int, sum_context_tokens: int, k: int) -> list[float]:
        return [TICK * (1 + (sum_context_tokens + num_seqs * j) % 2) for j in range(k)]

    def op_times_s(self, batch) -> dict[str, float]:
        return {"overhead": self.step_time_s(batch)}


def run(cls, arrivals, stop_at, stop_first, async_scheduling):
    env = simpy.Environment()
    config = SchedulerConfig(max_num_seqs=8, max_num_batched_tokens=64,
                             enable_chunked_prefill=True, long_prefill_token_threshold=0,
                             scheduling_policy="fcfs", max_model_len=1 << 20)  # fmt: skip
    recorder = Recorder()
    replica = cls(env, 0, ContinuousBatchingScheduler(config, BlockCounter(400, 16)),
                  GrowingCost(), recorder, async_scheduling=async_scheduling)  # fmt: skip
    reqs = []

    def send():
        for i, (gap, prompt, output) in enumerate(arrivals):
            yield env.timeout(gap)
            req = RequestState(index=i, request_id=i, arrival_s=env.now,
                               num_prompt_tokens=prompt, num_output_tokens=output)  # fmt: skip
            reqs.append(req)
            if i == stop_at and stop_first:  # lost, then a hand-off wakes it (disaggregation)
                replica.stop()
                replica.wake()
                return
            replica.submit(req)
            if i == stop_at:  # lost at the very instant a request woke it
                replica.stop()
                return

    env.process(send())
    env.run(until=100.0)
    recorder.finish()
    state = [(r.status, r.num_output_done, r.first_token_s, r.finish_s) for r in reqs]
    return state, recorder.timeline_table(), replica.process.is_alive, replica.clock_s


ARRIVAL = st.tuples(
    st.sampled_from([0.0, TICK / 4, TICK, 3 * TICK, 3.5 * TICK, 40 * TICK]),  # gap
    st.integers(1, 40),  # prompt tokens
    st.integers(1, 60),  # output tokens
)


@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(ARRIVAL, min_size=1, max_size=12),
    stop_at=st.none() | st.integers(0, 11),
    stop_first=st.booleans(),
    async_scheduling=st.booleans(),
)
def test_a_wake_during_a_run_equals_the_interrupt(
    arrivals, stop_at, stop_first, async_scheduling
) -> None:
    """Arrivals mid-step and exactly at step ends (dyadic times), with or without async
    scheduling; the replica lost at an arrival's instant, just after or before its wake."""
    ours = run(Replica, arrivals, stop_at, stop_first, async_scheduling)
    ref = run(InterruptedReplica, arrivals, stop_at, stop_first, async_scheduling)
    assert ours[0] == ref[0]
    assert ours[1].equals(ref[1])
    assert ours[2:] == ref[2:]
