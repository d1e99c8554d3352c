"""Replica runtime under pipeline parallelism (PP > 1): vLLM V1's batch queue.

    loop:  no work and nothing in flight → sleep until a request is submitted
           while fewer than pp batches are in flight:
               batch = schedule(now) over the requests not in flight     (pure)
               empty → stop filling
               hand it to the stages: StageClock places it, giving its end (pure)
           wait for the oldest in-flight batch to end, apply it, record it

This is `EngineCore.step_with_batch_queue` (see `parallel/pipeline.py` for the timing and
`ContinuousBatchingScheduler.schedule(now, exclude=...)` for what may be scheduled).
Requests arriving while the engine waits on the oldest batch are scheduled after it
returns, as in vLLM, whose engine core blocks on that batch's result. There is no decode
fast-forward here (each batch is one event); the PP = 1 path is `sim/replica.py`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import simpy

from infsim.core.batch import Batch
from infsim.core.request import RequestState
from infsim.cost.base import CostModel
from infsim.cost.pipeline import PipelineCost
from infsim.frontend.api_server import ApiServers
from infsim.metrics.recorder import Recorder
from infsim.parallel.pipeline import StageClock
from infsim.scheduling.continuous import ContinuousBatchingScheduler
from infsim.sim.replica import Replica


class PipelinedReplica(Replica):
    def __init__(  # noqa: PLR0913
        self,
        env: simpy.Environment,
        replica_id: int,
        scheduler: ContinuousBatchingScheduler,
        cost_model: CostModel,
        recorder: Recorder,
        fast_forward: bool = True,
        on_finished: Callable[[RequestState], None] | None = None,
        *,
        pipeline: PipelineCost,
        frontend: ApiServers | None = None,
    ) -> None:
        self.pipeline = pipeline
        # The front end's request path only: token delivery keeps the stages' timing.
        super().__init__(env, replica_id, scheduler, cost_model, recorder, False, on_finished,
                         frontend=frontend, egress=False)  # fmt: skip

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        try:
            yield from self._pipeline_loop()
        except simpy.Interrupt:  # only `stop` interrupts (the replica is lost)
            if not self.stopped:
                raise

    def _pipeline_loop(self) -> Generator[simpy.Event, Any, None]:
        env, sched, pipe = self.env, self.scheduler, self.pipeline
        depth = pipe.num_stages
        stages = StageClock(depth)
        queue: deque[tuple[Batch, float, float]] = deque()
        in_flight: set[int] = set()
        while True:
            while not queue and not sched.has_work():  # a wake-up may bring no work
                self._wake = env.event()
                yield self._wake
                self._wake = None
                self.clock_s = env.now
            now = self.clock_s
            batch = None
            while len(queue) < depth:
                batch = sched.schedule(now, exclude=in_flight)
                if not batch.requests:
                    break
                end = stages.submit(now, pipe.stage_times_s(batch), pipe.send_times_s(batch))
                queue.append((batch, now, end))
                in_flight.update(map(id, batch.requests))
            if not queue:
                if batch is not None and batch.num_preempted:
                    continue  # a request preempted itself: schedule again, as vLLM
                raise RuntimeError(f"replica {self.replica_id}: work but nothing to schedule")
            done, start, end = queue.popleft()
            yield env.timeout(end - env.now)
            self.clock_s = end
            in_flight.difference_update(map(id, done.requests))
            outcome = sched.on_batch_done(done, start, end)
            self._record(start, end, 1, done.num_batched_tokens, done.num_preempted, outcome,
                         done.num_seqs)  # fmt: skip
