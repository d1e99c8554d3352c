"""Pure searches of `infsim plan`: the fewest replicas that meet the SLO, and a way to run
callback-style searches one probe at a time.

No simulator and no I/O here. `min_replicas` takes any oracle `probe(replicas) -> Probe`
that is monotone in the replica count (more replicas never make the SLO harder to meet at
a fixed load), so it is tested against fake oracles with exact probe counts. The planner
runs many candidates side by side, one probe each per round, so that a process pool has
work for every core: `next_probe` replays a search against the answers known so far and
returns the first probe it has no answer for (a search is a plain function, and replaying
it is cheap next to one simulation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

FOUND, MAX_REPLICAS, LATENCY_BOUND, FAILED = "found", "max_replicas", "latency_bound", "failed"
"""How a replica search ended: the answer; still missing at the largest count allowed;
doubling the replicas stopped lowering the latency (the candidate's latency floor is above
the SLO, so more replicas cannot help); a point failed to run."""


@dataclass(frozen=True)
class Probe:
    """One evaluated replica count: did it meet the SLO, and by how much it missed
    (`violation`: the largest relative excess over a limit, ≤ 0 when met; infinite when
    nothing could be measured). `error` is set for a point that failed to run."""

    met: bool
    violation: float
    error: str | None = None


@dataclass(frozen=True)
class ReplicaSearch:
    """`replicas` is the fewest replicas that met the SLO (None when `stop` is not FOUND);
    `probes` lists every (replicas, Probe) in probe order."""

    replicas: int | None
    stop: str
    probes: list[tuple[int, Probe]] = field(default_factory=list)


def min_replicas(
    probe: Callable[[int], Probe],
    *,
    start: int = 1,
    max_replicas: int = 64,
    min_gain: float = 0.1,
) -> ReplicaSearch:
    """The fewest replicas r in [1, max_replicas] with probe(r).met, for a monotone oracle.

    Gallop up from `start` by doubling until a count meets the SLO, then bisect between the
    last count that missed and the first that met: at most 2·⌈log2 r⌉ + 1 probes from
    start = 1. Early stops: a failed point (FAILED); a count at `max_replicas` that still
    misses (MAX_REPLICAS); and a doubling that lowered the violation by less than
    `min_gain` of itself (LATENCY_BOUND: e.g. TPOT at a light load is already above the
    limit, which no replica count fixes). A `start` above 1 that meets bisects down to 1.
    """
    probes: list[tuple[int, Probe]] = []

    def ask(r: int) -> Probe:
        p = probe(r)
        probes.append((r, p))
        return p

    r = max(1, min(start, max_replicas))
    p = ask(r)
    lo, hi = (0, r) if p.met else (r, None)  # largest count known to miss; smallest that met
    while hi is None and p.error is None:
        if r >= max_replicas:
            return ReplicaSearch(None, MAX_REPLICAS, probes)
        r = min(2 * r, max_replicas)
        previous, p = p, ask(r)
        if p.met:
            hi = r
        elif p.error is None and _no_gain(previous.violation, p.violation, min_gain):
            return ReplicaSearch(None, LATENCY_BOUND, probes)
        else:
            lo = r
    while p.error is None and hi - lo > 1:
        mid = (lo + hi) // 2
        p = ask(mid)
        lo, hi = (lo, mid) if p.met else (mid, hi)
    if p.error is not None:
        return ReplicaSearch(None, FAILED, probes)
    return ReplicaSearch(hi, FOUND, probes)


def _no_gain(before: float, after: float, min_gain: float) -> bool:
    """True when `after` is not at least `min_gain` (relative) below `before`."""
    if not math.isfinite(before):
        return not after < before  # from unmeasurable to measurable is a gain
    return before - after < min_gain * abs(before)


class UnansweredProbeError(Exception):
    """Raised inside a replayed search at the first probe with no known answer (control
    flow of `next_probe`, never seen outside it)."""

    def __init__(self, x: object) -> None:
        super().__init__(x)
        self.x = x


def next_probe(
    search: Callable[[Callable[[T], R]], object], known: Mapping[T, R]
) -> tuple[bool, T | None, object]:
    """Replay `search(oracle)` with the answers in `known`: (True, None, result) when it
    finishes, or (False, x, None) with the first probe x it has no answer for."""

    def oracle(x: T) -> R:
        if x in known:
            return known[x]
        raise UnansweredProbeError(x)

    try:
        return True, None, search(oracle)
    except UnansweredProbeError as need:
        return False, need.x, None
