"""The API servers' streaming window (parallel lists with a moving head, bisection)
against the deque it replaced: the same window, base and load after every stream call,
over random streams with tied and equal step ends, single steps and runs, windows starting
before, inside, at and after them, and the dropped prefix deleted early or never."""

from __future__ import annotations

import itertools
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.frontend.api_server import MAX_LOAD, ApiServers
from infsim.frontend.costs import FrontendCosts

COSTS = FrontendCosts(api_server_count=3, request_s=1e-3, request_per_prompt_token_s=1e-6,
                      output_per_step_s=1e-3, output_per_token_s=5e-5, queueing=True)  # fmt: skip


class DequeWindow:
    """The window as it was: a deque of (end, cumulative work), popped on trim, scanned
    on load."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self.stream: deque[tuple[float, float]] = deque()
        self.total = self.base = 0.0

    def on_stream(self, now: float, num_steps: int, num_tokens: int) -> None:
        self.total += COSTS.stream_work_s(num_steps, num_tokens)
        self.stream.append((now, self.total))
        self.trim(now)

    def on_stream_steps(self, ends: list[float], num_tokens: int) -> None:
        work = COSTS.stream_work_s(1, num_tokens)
        for end in ends:
            self.total += work
            self.stream.append((end, self.total))
        self.trim(ends[-1])

    def trim(self, now: float) -> None:
        while self.stream[0][0] < now - self.window_s:
            self.base = self.stream.popleft()[1]

    def load(self, now: float) -> float:
        since, before = now - self.window_s, self.base
        for t, total in self.stream:
            if t > since:
                break
            before = total
        return min((self.total - before) / (self.window_s * COSTS.api_server_count), MAX_LOAD)


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.01, 0.25, 0.5, 1.0, 0.013]), min_size=1, max_size=80),
    tokens=st.lists(st.integers(0, 300), min_size=1, max_size=60),
    runs=st.lists(st.integers(1, 6), min_size=1, max_size=20),
    probes=st.lists(st.floats(-1.0, 3.0, allow_nan=False), min_size=1, max_size=8),
    compact_at=st.sampled_from([0, 1, 3, 1024]),
)
def test_window_matches_the_deque(
    gaps: list[float], tokens: list[int], runs: list[int], probes: list[float], compact_at: int
) -> None:
    servers, ref = ApiServers(COSTS), DequeWindow()
    servers.compact_at = compact_at
    ends = list(itertools.accumulate(gaps, initial=5.0))
    i, n = 0, 0
    while i < len(ends):  # steps alone and in runs, as the replica streams them
        width, num_tokens = runs[n % len(runs)], tokens[n % len(tokens)]
        for window in (servers, ref):
            if width == 1:
                window.on_stream(ends[i], 1, num_tokens)
            else:
                window.on_stream_steps(ends[i : i + width], num_tokens)
        assert servers.window() == list(ref.stream)
        assert (servers._base_s, servers._stream_total_s) == (ref.base, ref.total)
        last = ends[min(i + width, len(ends)) - 1]
        for probe in (*probes, 0.0, 1.0):
            assert servers.load(last + probe) == ref.load(last + probe)
        for t, _ in list(ref.stream)[:3]:  # windows starting exactly at a step end
            assert servers.load(t + 1.0) == ref.load(t + 1.0)
        i += width
        n += 1
