"""Scheduling the next batch while earlier ones are still in the pipeline (PP > 1).

vLLM V1 advances `num_computed_tokens` when it schedules, so a decoding request already in
an in-flight batch has no new token to compute and is skipped until its output returns.
Here a request sits in at most one in-flight batch: `schedule_excluding` runs the
ordinary scheduler over the running requests that are not in flight, with
`max_num_seqs` still counting the in-flight ones, and then restores the running list in
admission order (in-flight and still-running requests where they were, newly admitted
ones at the end). Preemption victims come from the requests not in flight. Difference
from vLLM: a long prompt's next chunk waits for its previous chunk's batch to return,
where vLLM may put consecutive chunks in consecutive in-flight batches.
"""

from __future__ import annotations

from dataclasses import replace

from infsim.core.batch import Batch
from infsim.scheduling.continuous import ContinuousBatchingScheduler


def schedule_excluding(
    sched: ContinuousBatchingScheduler, in_flight: set[int], now: float
) -> Batch:
    """`sched.schedule(now)` without the requests whose `id()` is in `in_flight`."""
    if not in_flight:
        return sched.schedule(now)
    everyone = sched.running
    free = [r for r in everyone if id(r) not in in_flight]
    config = sched.config
    sched.running = free
    sched.config = replace(config, max_num_seqs=config.max_num_seqs - (len(everyone) - len(free)))
    try:
        batch = sched.schedule(now)
    finally:
        sched.config = config
        still = {id(r) for r in sched.running}
        known = {id(r) for r in everyone}
        kept = [r for r in everyone if id(r) in in_flight or id(r) in still]
        sched.running = kept + [r for r in sched.running if id(r) not in known]
    return batch
