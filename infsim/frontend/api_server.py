"""The API servers of one replica as a queue: pure, given `now`.

Requests take an API server in arrival order (FIFO over `api_server_count` servers: the
Kiefer–Wolfowitz recursion, each server's next free time) for their request-path work.
Meanwhile the same processes stream every running request's tokens, so an API server does
request work only in the time streaming leaves it: the work is stretched by 1 / (1 − ρ),
ρ = the streaming load per server over the last `window_s` (capped at `MAX_LOAD` so a
saturated front end stays finite; it then shows as long request-path times, not a hang).
With `queueing` off, the request path is a fixed delay (no waiting, no stretching).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate, repeat

from infsim.frontend.costs import FrontendCosts

MAX_LOAD = 0.95


class ApiServers:
    compact_at = 1024  # trimmed steps kept before the dropped prefix is deleted

    def __init__(self, costs: FrontendCosts, window_s: float = 1.0) -> None:
        self.costs = costs
        self.window_s = window_s
        self._free_at_s = [0.0] * costs.api_server_count
        # The streamed steps: end times and cumulative work, parallel lists; the window
        # is [_head:] (trimming moves the head; the dropped prefix is deleted in bulk).
        self._stream_t: list[float] = []
        self._stream_w: list[float] = []
        self._head = 0
        self._stream_total_s = 0.0
        self._base_s = 0.0  # cumulative work of the steps dropped from the window

    def admit(self, now: float, num_prompt_tokens: int) -> float:
        """When a request submitted at `now` reaches the engine."""
        work = self.costs.request_work_s(num_prompt_tokens)
        if not self.costs.queueing:
            return now + work
        free = self._free_at_s
        i = min(range(len(free)), key=free.__getitem__)
        start = max(now, free[i])
        done = start + work / (1.0 - self.load(start))
        free[i] = done
        return done

    def on_stream(self, now: float, num_steps: int, num_tokens: int) -> None:
        """Steps ending at `now` streamed `num_tokens` tokens out."""
        if not self.costs.queueing:
            return
        self._stream_total_s += self.costs.stream_work_s(num_steps, num_tokens)
        self._stream_t.append(now)
        self._stream_w.append(self._stream_total_s)
        self._trim(now)

    def on_stream_steps(self, ends_s: list[float], num_tokens: int) -> None:
        """`on_stream(end, 1, num_tokens)` for each of a run's step ends, in order: the same
        sums in the same order; the window is trimmed once, at the last end (the ends rise,
        so that drops exactly the steps the step-by-step trims would have dropped, and no
        load is read in between)."""
        if not self.costs.queueing or not ends_s:
            return
        work = self.costs.stream_work_s(1, num_tokens)
        # accumulate adds in C, one `total + work` per step: the same floats as a loop
        totals = list(accumulate(repeat(work, len(ends_s)), initial=self._stream_total_s))
        self._stream_total_s = totals[-1]
        self._stream_t += ends_s
        del totals[0]
        self._stream_w += totals
        self._trim(ends_s[-1])

    def _trim(self, now: float) -> None:
        """Let go of the steps that ended before the window ending at `now` (their work
        moves into the base): the head moves past them (the ends rise: a bisection)."""
        times, head = self._stream_t, self._head
        i = bisect_left(times, now - self.window_s, head)
        if i > head:
            self._base_s = self._stream_w[i - 1]
            if i > self.compact_at and 2 * i > len(times):  # amortised O(1) a step
                del times[:i], self._stream_w[:i]
                i = 0
            self._head = i

    def window(self) -> list[tuple[float, float]]:
        """The steps in the window: (end time, cumulative work) each, oldest first."""
        head = self._head
        return list(zip(self._stream_t[head:], self._stream_w[head:], strict=True))

    def load(self, now: float) -> float:
        """Streaming work per server per second over the window before `now` (the work of
        steps that ended in it)."""
        # the last step ending at or before the window's start (ends rise): its total
        i = bisect_right(self._stream_t, now - self.window_s, self._head)
        before = self._stream_w[i - 1] if i > self._head else self._base_s
        rho = (self._stream_total_s - before) / (self.window_s * self.costs.api_server_count)
        return min(rho, MAX_LOAD)
