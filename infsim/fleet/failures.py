"""When replicas fail or are preempted. Pure; randomness from the caller.

Random failures are a Poisson process per replica (exponential time to failure, mean
`replica_mtbf_s`); spot preemptions are one per replica at `spot_interruptions_per_hour`,
announced `spot_notice_s` before the loss. Both clocks start when the replica is
requested (a spot instance can be reclaimed while it boots). Scheduled events come
from the scenario. A replica released before its draw simply never fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from infsim.fleet.spec import FailuresSpec

Kind = Literal["failure", "preemption"]


@dataclass(frozen=True)
class FailureDraw:
    """The next event of one replica: a failure (lost at `at_s`) or a preemption notice
    at `at_s` (lost at `at_s + notice_s`)."""

    at_s: float
    kind: Kind


class FailureModel:
    def __init__(self, spec: FailuresSpec | None) -> None:
        self.spec = spec or FailuresSpec()

    @property
    def notice_s(self) -> float:
        return self.spec.spot_notice_s

    def draw(
        self, now: float, spot_per_hour: float, rng: np.random.Generator
    ) -> FailureDraw | None:
        """The first random event of a replica requested at `now` (None: never).

        Two draws from `rng` at most, always in the same order (failure, then spot), and
        none for a clock that is off, so streams stay aligned across scenarios that
        differ only in other pools."""
        at_failure = at_spot = math.inf
        if self.spec.replica_mtbf_s is not None:
            at_failure = now + float(rng.exponential(self.spec.replica_mtbf_s))
        if spot_per_hour > 0:
            at_spot = now + float(rng.exponential(3600.0 / spot_per_hour))
        if at_failure == at_spot == math.inf:
            return None
        if at_failure <= at_spot:
            return FailureDraw(at_failure, "failure")
        return FailureDraw(at_spot, "preemption")

    def request_outcome(self, num_losses: int) -> Literal["requeue", "fail"]:
        """What happens to an in-flight request on its `num_losses`-th lost replica."""
        if self.spec.policy == "fail" or num_losses > self.spec.max_retries:
            return "fail"
        return "requeue"


class ProgressGuard:
    """Replica losses in a row with no request ending between them: more than `limit`
    means replicas are lost faster than they start and serve, and the run would never
    end (a failure or spot-interruption storm)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._num_done_at_loss = 0
        self._num_losses = 0

    def stuck_after_loss(self, num_done: int) -> bool:
        """Count one loss, seen with `num_done` requests ended so far."""
        if num_done != self._num_done_at_loss:
            self._num_done_at_loss, self._num_losses = num_done, 0
        self._num_losses += 1
        return self._num_losses > self.limit
