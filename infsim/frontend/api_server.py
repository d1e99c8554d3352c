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

from collections.abc import Sequence

import numpy as np

from infsim.frontend.costs import FrontendCosts

MAX_LOAD = 0.95
TRIM_EVERY = 32  # let go of the steps that left the window after this many more (+ 1/4)


class ApiServers:
    def __init__(self, costs: FrontendCosts, window_s: float = 1.0) -> None:
        self.costs = costs
        self.window_s = window_s
        self._free_at_s = [0.0] * costs.api_server_count
        # The streamed steps, oldest first (their ends rise): end time and cumulative work
        # in two float64 buffers, live in [_head, _tail) (a fast-forwarded run's ends are
        # copied in as one slice, no Python float per step). The window is trimmed
        # lazily: each stream call only moves `_trim_s` (the steps ending before
        # `_trim_s - window_s` have left the window); `load` reads as if they were gone,
        # and `_trim` lets them go (moves `_head`) every `TRIM_EVERY` (+ a quarter of the
        # window's) steps streamed, so the live part stays about a window long.
        self._times = np.empty(256, dtype=np.float64)
        self._totals = np.empty(256, dtype=np.float64)
        self._head = self._tail = 0
        self._trim_s = float("-inf")
        self._trim_len = TRIM_EVERY
        self._stream_total_s = 0.0
        self._base_s = 0.0  # cumulative work of the steps let go

    def admit(self, now: float, num_prompt_tokens: int) -> float:
        """When a request submitted at `now` reaches the engine."""
        work = self.costs.request_work_s(num_prompt_tokens)
        if not self.costs.queueing:
            return now + work
        free = self._free_at_s
        i = free.index(min(free))  # the first server free soonest
        start = max(now, free[i])
        done = start + work / (1.0 - self.load(start))
        free[i] = done
        return done

    def on_stream(self, now: float, num_steps: int, num_tokens: int) -> None:
        """Steps ending at `now` streamed `num_tokens` tokens out; the steps that ended
        before the window ending at `now` leave it."""
        if not self.costs.queueing:
            return
        self._stream_total_s += self.costs.stream_work_s(num_steps, num_tokens)
        tail = self._room(1)
        self._times[tail] = now
        self._totals[tail] = self._stream_total_s
        self._tail = tail + 1
        self._trim_s = now
        if tail + 1 - self._head >= self._trim_len:
            self._trim()

    def on_stream_steps(self, ends_s: Sequence[float], num_tokens: int) -> None:
        """`on_stream(end, 1, num_tokens)` for each of a run's step ends (a list, or a
        float64 array for a long run), in order: the same sums in the same order (numpy's
        cumulative sum adds left to right); the window is trimmed once, at the last end
        (the ends rise, so that drops exactly the steps the step-by-step trims would have
        dropped, and no load is read in between)."""
        n = len(ends_s)
        if not self.costs.queueing or not n:
            return
        work = self.costs.stream_work_s(1, num_tokens)
        tail = self._room(n)
        self._times[tail : tail + n] = ends_s
        totals = self._totals[tail : tail + n]
        totals.fill(work)
        totals[0] = self._stream_total_s + work
        totals.cumsum(out=totals)  # total + work, + work, ... (the method: no dispatch)
        self._stream_total_s = float(totals[n - 1])
        self._tail = tail + n
        self._trim_s = float(ends_s[n - 1])
        if tail + n - self._head >= self._trim_len:
            self._trim()

    def _room(self, num_steps: int) -> int:
        """Where `num_steps` more steps go (`_tail`), after moving the live steps to the
        front of the buffers, or into larger ones, when they would not fit."""
        tail = self._tail
        if tail + num_steps <= len(self._times):
            return tail
        head = self._head
        live = tail - head
        size = len(self._times)
        while 2 * (live + num_steps) > size:
            size *= 2
        for name in ("_times", "_totals"):
            old = getattr(self, name)
            new = old if size == len(old) else np.empty(size, dtype=np.float64)
            new[:live] = old[head:tail]
            setattr(self, name, new)
        self._head, self._tail = 0, live
        return live

    def _trim(self) -> None:
        """Let go of the steps that ended before the window ending at `_trim_s` (their work
        moves into the base)."""
        head, tail = self._head, self._tail
        i = int(self._times[head:tail].searchsorted(self._trim_s - self.window_s, "left"))
        if i:  # the first step still in the window is head + i
            self._base_s = float(self._totals[head + i - 1])
            self._head = head = head + i
        live = tail - head
        self._trim_len = live + live // 4 + TRIM_EVERY  # amortised O(1)

    def load(self, now: float) -> float:
        """Streaming work per server per second over the window before `now` (the work of
        steps that ended in it)."""
        # Before the window: the steps ending at or before `now - window_s`, and those the
        # trims have let go (ending before `_trim_s - window_s`).
        window_s = self.window_s
        since = now - window_s
        head = self._head
        times = self._times[head : self._tail]
        i = int(times.searchsorted(since, "right"))
        if self._trim_s - window_s > since:  # a window read before the last stream's
            i = max(i, int(times.searchsorted(self._trim_s - window_s, "left")))
        before = float(self._totals[head + i - 1]) if i else self._base_s
        rho = (self._stream_total_s - before) / (window_s * self.costs.api_server_count)
        return min(rho, MAX_LOAD)

    def window(self) -> tuple[list[tuple[float, float]], float]:
        """The (end time, cumulative work) of the streamed steps in the window, and the
        cumulative work of those that left it (for tests)."""
        self._trim()
        live = slice(self._head, self._tail)
        times, totals = self._times[live].tolist(), self._totals[live].tolist()
        return list(zip(times, totals, strict=True)), self._base_s
