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
from collections.abc import Sequence
from itertools import accumulate, repeat

from infsim.frontend.costs import FrontendCosts

MAX_LOAD = 0.95
SHORT_RUN = 48  # a run streams this many steps or more by `accumulate` (faster from here)
TRIM_EVERY = 32  # let go of the steps that left the window after this many more (+ 1/4)


def num_ends_before(ends_s: Sequence[float], time_s: float) -> int:
    """How many of a run's rising step ends (a list, or a float64 array) are before
    `time_s`: `bisect_left`, by the array's own search for an array (bisecting one from
    Python costs a numpy scalar per probe, ~5x longer)."""
    if type(ends_s) is list:
        return bisect_left(ends_s, time_s)
    return int(ends_s.searchsorted(time_s))  # type: ignore[attr-defined]


class ApiServers:
    def __init__(self, costs: FrontendCosts, window_s: float = 1.0) -> None:
        self.costs = costs
        self.window_s = window_s
        self._free_at_s = [0.0] * costs.api_server_count
        # The streamed steps, oldest first (their ends rise), as two parallel lists: end
        # time, cumulative work. The window is trimmed lazily: each stream call only moves
        # `_trim_s` (the steps ending before `_trim_s - window_s` have left the window);
        # `load` reads as if they were gone, and `_trim` lets them go every `TRIM_EVERY`
        # (+ a quarter of the window's) steps streamed, so the lists stay about a window
        # long (a short bisection in `load`: its steps' floats are mostly out of cache).
        self._times: list[float] = []
        self._totals: list[float] = []
        self._trim_s = float("-inf")
        self._trim_len = TRIM_EVERY
        self._stream_total_s = 0.0
        self._base_s = 0.0  # cumulative work of the steps dropped from the lists

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
        times = self._times
        times.append(now)
        self._totals.append(self._stream_total_s)
        self._trim_s = now
        if len(times) >= self._trim_len:
            self._trim()

    def on_stream_steps(self, ends_s: Sequence[float], num_tokens: int) -> None:
        """`on_stream(end, 1, num_tokens)` for each of a run's step ends (a list, or a
        float64 array from a long run), in order: the same sums in the same order; the
        window is trimmed once, at the last end (the ends rise, so that drops exactly the
        steps the step-by-step trims would have dropped, and no load is read in between).

        A run that spans more than the window mostly leaves it at once: the work of its
        steps before the window is summed without list entries (into the base, as a trim
        would put it) and, since every earlier step has left too, the lists restart from
        its part in the window."""
        n = len(ends_s)
        if not self.costs.queueing or not n:
            return
        work: float = self.costs.stream_work_s(1, num_tokens)
        total: float = self._stream_total_s
        last = float(ends_s[n - 1])
        cut = 0
        if n >= SHORT_RUN and ends_s[0] < last - self.window_s:
            cut = num_ends_before(ends_s, last - self.window_s)  # its first end in it
            for _ in range(cut):
                total += work
            self._base_s = total
            self._times, self._totals = [], []
        tail = ends_s[cut:] if cut else ends_s
        if type(tail) is not list:
            tail = tail.tolist()  # type: ignore[attr-defined]
        totals = self._totals
        if len(tail) < SHORT_RUN:
            for _ in tail:
                total += work
                totals.append(total)
        else:  # total + work, + work, ...: the same float additions, in C
            sums = accumulate(repeat(work, len(tail)), initial=total)
            next(sums)  # the initial total itself
            totals += sums
            total = totals[-1]
        self._stream_total_s = total
        times = self._times
        times += tail
        self._trim_s = last
        if len(times) >= self._trim_len:
            self._trim()

    def _trim(self) -> None:
        """Let go of the steps that ended before the window ending at `_trim_s` (their work
        moves into the base)."""
        times, totals = self._times, self._totals
        i = bisect_left(times, self._trim_s - self.window_s)  # the first step still in it
        if i:
            self._base_s = totals[i - 1]
            del times[:i], totals[:i]
        self._trim_len = len(times) + len(times) // 4 + TRIM_EVERY  # amortised O(1)

    def load(self, now: float) -> float:
        """Streaming work per server per second over the window before `now` (the work of
        steps that ended in it)."""
        # Before the window: the steps ending at or before `now - window_s`, and those the
        # trims have let go (ending before `_trim_s - window_s`).
        window_s = self.window_s
        since = now - window_s
        i = bisect_right(self._times, since)
        if self._trim_s - window_s > since:  # a window read before the last stream's
            i = max(i, bisect_left(self._times, self._trim_s - window_s))
        before = self._totals[i - 1] if i else self._base_s
        rho = (self._stream_total_s - before) / (window_s * self.costs.api_server_count)
        return min(rho, MAX_LOAD)

    def window(self) -> tuple[list[tuple[float, float]], float]:
        """The (end time, cumulative work) of the streamed steps in the window, and the
        cumulative work of those that left it (for tests)."""
        self._trim()
        return list(zip(self._times, self._totals, strict=True)), self._base_s
