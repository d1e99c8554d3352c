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

from collections import deque

from infsim.frontend.costs import FrontendCosts

MAX_LOAD = 0.95


class ApiServers:
    def __init__(self, costs: FrontendCosts, window_s: float = 1.0) -> None:
        self.costs = costs
        self.window_s = window_s
        self._free_at_s = [0.0] * costs.api_server_count
        self._stream: deque[tuple[float, float]] = deque()  # (time, cumulative work)
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
        self._stream.append((now, self._stream_total_s))
        self._trim(now)

    def on_stream_steps(self, ends_s: list[float], num_tokens: int) -> None:
        """`on_stream(end, 1, num_tokens)` for each of a run's step ends, in order: the same
        sums in the same order; the window is trimmed once, at the last end (the ends rise,
        so that drops exactly the steps the step-by-step trims would have dropped, and no
        load is read in between)."""
        if not self.costs.queueing or not ends_s:
            return
        work = self.costs.stream_work_s(1, num_tokens)
        stream, total = self._stream, self._stream_total_s
        for end in ends_s:
            total += work
            stream.append((end, total))
        self._stream_total_s = total
        self._trim(ends_s[-1])

    def _trim(self, now: float) -> None:
        """Let go of the steps that ended before the window ending at `now` (their work
        moves into the base)."""
        stream, since = self._stream, now - self.window_s
        while stream[0][0] < since:
            self._base_s = stream.popleft()[1]

    def load(self, now: float) -> float:
        """Streaming work per server per second over the window before `now` (the work of
        steps that ended in it)."""
        stream = self._stream
        since = now - self.window_s
        before = self._base_s
        for t, total in stream:  # the window holds a second of steps: a short scan
            if t > since:
                break
            before = total
        rho = (self._stream_total_s - before) / (self.window_s * self.costs.api_server_count)
        return min(rho, MAX_LOAD)
