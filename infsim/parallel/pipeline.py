"""Pipeline-parallel timing: layer split over stages and the stage clock.

vLLM V1 with `--pipeline-parallel-size pp` runs `EngineCore.step_with_batch_queue`: its
batch queue holds up to `pp` scheduled batches (the executor's `max_concurrent_batches`).
Each engine step first tries to schedule another batch while the queue is not full (a
request already in an in-flight batch is not scheduled again); when nothing more can be
scheduled, or the queue is full, it blocks until the *oldest* batch returns, then updates
the scheduler from its output. Each stage's worker runs the batches it receives in order.
So, for batch j entering at `t_j` with stage times τ_s and activation sends δ_s:

    begin(j, 0) = max(t_j, end(j−1, 0))
    begin(j, s) = max(end(j, s−1) + δ_{s−1}, end(j−1, s))
    end(j, s)   = begin(j, s) + τ_s,        the batch returns at end(j, pp−1)

With constant stage time τ and no transfer the pipeline completes one batch per τ once
`pp` batches are in flight (pp × the rate of one unpipelined pass of pp·τ), and a lone
batch takes pp·τ + Σδ. With transfers, only `pp` batches may be in flight, so the rate is
min(1/τ, pp / (pp·τ + Σδ)): the queue depth, not the stage, bounds it. Fewer than pp
schedulable batches leave stages idle (bubbles): a decode-only load whose requests all
sit in one batch runs at one batch per full latency.
"""

from __future__ import annotations


def stage_layer_counts(num_layers: int, pipeline_parallel: int) -> list[int]:
    """Decoder layers per stage, as vLLM's `get_pp_indices`: an even split, with the
    remainder given one layer each to the stages before the last (the last stage also
    holds the LM head)."""
    base, extra = divmod(num_layers, pipeline_parallel)
    counts = [base] * pipeline_parallel
    for i in range(2, extra + 2):
        counts[-i] += 1
    return counts


class StageClock:
    """When each stage is next free; `submit` places one batch (see the module doc)."""

    def __init__(self, num_stages: int) -> None:
        self.stage_free_s = [0.0] * num_stages

    def submit(self, start_s: float, stage_s: list[float], send_s: list[float]) -> float:
        """Run a batch handed over at `start_s` through every stage; return its end time.
        `send_s[s]` is the activation transfer from stage s to s + 1."""
        free = self.stage_free_s
        t = start_s
        for s, duration in enumerate(stage_s):
            if s:
                t += send_s[s - 1]
            begin = t if t > free[s] else free[s]
            t = free[s] = begin + duration
        return t
