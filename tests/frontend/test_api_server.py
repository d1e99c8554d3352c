"""The API servers' streaming load (infsim/frontend/api_server.py): a fast-forwarded run
streamed at once equals streaming its steps one by one, and the window (parallel lists,
trimmed lazily) reads exactly as a straightforward one trimmed at every stream."""

from __future__ import annotations

import itertools
from collections import deque
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.frontend import api_server
from infsim.frontend.api_server import MAX_LOAD, ApiServers
from infsim.frontend.costs import FrontendCosts

COSTS = FrontendCosts(api_server_count=2, request_s=1e-3, request_per_prompt_token_s=1e-6,
                      output_per_step_s=1e-3, output_per_token_s=5e-5, queueing=True)  # fmt: skip


class ReferenceApiServers:
    """The API servers as first written: a deque of (time, cumulative work) trimmed at
    every stream, a scan for the load, a keyed min for the server."""

    def __init__(self, costs: FrontendCosts, window_s: float = 1.0) -> None:
        self.costs, self.window_s = costs, window_s
        self.free_at_s = [0.0] * costs.api_server_count
        self.stream: deque[tuple[float, float]] = deque()
        self.total_s = self.base_s = 0.0

    def admit(self, now: float, num_prompt_tokens: int) -> float:
        work = self.costs.request_work_s(num_prompt_tokens)
        free = self.free_at_s
        i = min(range(len(free)), key=free.__getitem__)
        start = max(now, free[i])
        done = start + work / (1.0 - self.load(start))
        free[i] = done
        return done

    def on_stream(self, now: float, num_steps: int, num_tokens: int) -> None:
        self.total_s += self.costs.stream_work_s(num_steps, num_tokens)
        self.stream.append((now, self.total_s))
        self.trim(now)

    def on_stream_steps(self, ends_s: list[float], num_tokens: int) -> None:
        for end in ends_s:
            self.on_stream(end, 1, num_tokens)

    def trim(self, now: float) -> None:
        while self.stream[0][0] < now - self.window_s:
            self.base_s = self.stream.popleft()[1]

    def load(self, now: float) -> float:
        before = self.base_s
        for t, total in self.stream:
            if t > now - self.window_s:
                break
            before = total
        rho = (self.total_s - before) / (self.window_s * self.costs.api_server_count)
        return min(rho, MAX_LOAD)


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 0.3, allow_nan=False), min_size=0, max_size=120),
    num_tokens=st.integers(0, 512),
    start=st.floats(0.0, 100.0, allow_nan=False),
)
def test_a_run_streamed_at_once_equals_step_by_step(
    gaps: list[float], num_tokens: int, start: float
) -> None:
    ends = [start + t for t in itertools.accumulate(gaps)]
    one, bulk = ApiServers(COSTS), ApiServers(COSTS)
    for servers in (one, bulk):
        servers.on_stream(start - 0.5, 1, 7)  # something already in the window
    for end in ends:
        one.on_stream(end, 1, num_tokens)
    bulk.on_stream_steps(np.array(ends) if num_tokens % 2 else ends, num_tokens)
    later = (ends[-1] if ends else start) + 0.25
    assert bulk.load(later) == one.load(later)
    assert bulk.window() == one.window()
    assert bulk._stream_total_s == one._stream_total_s


# One event: (gap to the previous end, kind, steps or prompt tokens, tokens, read back).
EVENTS = st.lists(
    st.tuples(
        st.sampled_from([0.0, 1e-3, 0.01, 0.05, 0.2, 0.7, 1.0, 1.5]),
        st.sampled_from(["step", "run", "admit"]),
        st.integers(1, 70),
        st.integers(0, 300),
        st.floats(-2.0, 2.0, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    events=EVENTS,
    count=st.integers(1, 3),
    window_s=st.sampled_from([0.05, 0.5, 1.0]),
    trim_every=st.sampled_from([1, 2, 5, 1024]),
)
def test_the_window_reads_as_one_trimmed_at_every_stream(
    events: list, count: int, window_s: float, trim_every: int
) -> None:
    """Random streams (single steps, runs as lists and as arrays, short and long enough
    for the `accumulate` path, ties at a step end), admissions and reads of the load at
    any time, also before the last stream (the trimmed steps then still count as gone):
    every admission time, every load and the final window equal the reference's, float
    for float."""
    costs = FrontendCosts(api_server_count=count, request_s=2e-3, request_per_prompt_token_s=1e-5,
                          output_per_step_s=1e-3, output_per_token_s=5e-5)  # fmt: skip
    with patch.object(api_server, "TRIM_EVERY", trim_every):
        ours, ref = ApiServers(costs, window_s), ReferenceApiServers(costs, window_s)
        now = 0.0
        for gap, kind, n, tokens, read in events:
            now += gap
            if kind == "step":
                ours.on_stream(now, n % 3 + 1, tokens)
                ref.on_stream(now, n % 3 + 1, tokens)
            elif kind == "run":
                ends = [now + gap * j for j in range(n)]
                now = ends[-1]
                ours.on_stream_steps(np.array(ends) if tokens % 2 else ends, tokens)
                ref.on_stream_steps(ends, tokens)
            else:
                assert ours.admit(now, tokens) == ref.admit(now, tokens)
            assert ours.load(now + read * window_s) == ref.load(now + read * window_s)
        assert ours.window() == (list(ref.stream), ref.base_s)
        assert ours._free_at_s == ref.free_at_s
