"""The autoscaler: signal samples → desired replicas of one pool. Pure; time is `now`.

Each control tick (every `interval_s`) the wiring adds the pool's signal total to a
`SignalWindow` and asks `Autoscaler.decide`:

1. demand = mean of the samples in the last `window_s` (Knative stable window);
2. raw = HPA formula on the serving replicas (`hpa_desired`), clamped to [min, max];
3. stabilization as HPA's `stabilizeRecommendationWithBehaviors`: scale up only to the
   lowest recommendation of the last `scale_up_stabilization_s`, down only to the
   highest of the last `scale_down_stabilization_s`;
4. no scale-down within `scale_down_delay_s` of the last scale-up;
5. panic (Knative KPA, optional): demand over the short `panic_window_s` reaching
   `panic_threshold` × current replicas scales up at once and blocks scale-down until a
   full stable window passes without panic;
6. activator: requests queued at the gateway with no replica at all ⇒ at least one (the
   wiring also starts one at once when a request reaches a fleet scaled to zero).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from infsim.fleet.spec import AutoscalingSpec


def hpa_desired(ready: int, total: float, target_per_replica: float, tolerance: float) -> int:
    """Kubernetes HPA: desired = ceil(ready × ratio), ratio = (total / ready) / target;
    unchanged while |ratio − 1| ≤ tolerance. With no ready replica the ratio is
    undefined: desired = ceil(total / target) (0 for no demand)."""
    if ready == 0:
        return math.ceil(total / target_per_replica)
    ratio = total / ready / target_per_replica
    if abs(ratio - 1.0) <= tolerance:
        return ready
    return math.ceil(ready * ratio)


class SignalWindow:
    """Time-stamped samples of one signal; means over trailing windows."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, value: float) -> None:
        self._samples.append((now, value))
        while self._samples and self._samples[0][0] < now - self.keep_s:
            self._samples.popleft()

    def mean(self, now: float, window_s: float) -> float:
        """Mean of the samples taken in (now − window_s, now] (0 if none)."""
        values = [v for t, v in self._samples if t > now - window_s]
        return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class Decision:
    desired: int
    raw: int  # the HPA recommendation before stabilization
    demand: float  # the windowed signal total
    panic: bool


class Autoscaler:
    """Desired replica count of one pool; keeps its recommendation history."""

    def __init__(self, spec: AutoscalingSpec, min_replicas: int, max_replicas: int) -> None:
        self.spec = spec
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self._history: deque[tuple[float, int]] = deque()
        self._last_scale_up_s = -math.inf
        self._panic_until_s = -math.inf
        self.window = SignalWindow(max(spec.window_s, spec.panic_window_s or 0.0))

    def _clamp(self, n: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, n))

    def note_scale_up(self, now: float) -> None:
        """A scale-up decided outside `decide` (the activator): starts the scale-down delay."""
        self._last_scale_up_s = now

    def decide(self, now: float, ready: int, current: int, num_gateway_queued: int) -> Decision:
        """`ready`: serving replicas; `current`: live ones (provisioning to serving)."""
        s = self.spec
        demand = self.window.mean(now, s.window_s)
        raw = self._clamp(hpa_desired(ready, demand, s.target_per_replica, s.tolerance))
        self._history.append((now, raw))
        keep = max(s.scale_up_stabilization_s, s.scale_down_stabilization_s)
        while self._history and self._history[0][0] < now - keep:
            self._history.popleft()
        up = min(r for t, r in self._history if t >= now - s.scale_up_stabilization_s)
        down = max(r for t, r in self._history if t >= now - s.scale_down_stabilization_s)
        desired = up if current < up else down if current > down else current
        panic = False
        if s.panic_window_s is not None:
            burst = self.window.mean(now, s.panic_window_s)
            panic_desired = self._clamp(math.ceil(burst / s.target_per_replica))
            if panic_desired >= s.panic_threshold * max(current, 1) and panic_desired > current:
                self._panic_until_s = now + s.window_s
            if now < self._panic_until_s:
                panic = True
                desired = max(desired, panic_desired, current)  # never down in panic
        if desired < current and now - self._last_scale_up_s < s.scale_down_delay_s:
            desired = current
        if desired == 0 and num_gateway_queued and self.max_replicas >= 1:
            desired = 1  # the activator wakes a scaled-to-zero pool
        if desired > current:
            self._last_scale_up_s = now
        return Decision(desired, raw, demand, panic)
