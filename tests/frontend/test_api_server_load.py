"""The API servers' load read by bisection equals the scan it replaced: the work of the
last streamed step ending at or before the window's start, over random streams with tied
and equal step ends and windows starting before, inside, at and after them."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.frontend.api_server import MAX_LOAD, ApiServers
from infsim.frontend.costs import FrontendCosts

COSTS = FrontendCosts(api_server_count=3, request_s=1e-3, request_per_prompt_token_s=1e-6,
                      output_per_step_s=1e-3, output_per_token_s=5e-5, queueing=True)  # fmt: skip


def scanned_load(servers: ApiServers, now: float) -> float:
    """`ApiServers.load` as a scan over the window (the implementation before bisection)."""
    since = now - servers.window_s
    before = servers._base_s
    for t, total in servers._stream:
        if t > since:
            break
        before = total
    rho = (servers._stream_total_s - before) / (servers.window_s * COSTS.api_server_count)
    return min(rho, MAX_LOAD)


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.01, 0.25, 0.5, 1.0, 0.013]), min_size=1, max_size=60),
    tokens=st.lists(st.integers(0, 300), min_size=1, max_size=60),
    runs=st.lists(st.integers(1, 6), min_size=1, max_size=20),
    probes=st.lists(st.floats(-1.0, 3.0, allow_nan=False), min_size=1, max_size=8),
)
def test_load_by_bisection_equals_the_scan(
    gaps: list[float], tokens: list[int], runs: list[int], probes: list[float]
) -> None:
    servers = ApiServers(COSTS)
    ends = list(itertools.accumulate(gaps, initial=5.0))
    i, n = 0, 0
    while i < len(ends):  # steps alone and in runs, as the replica streams them
        width = runs[n % len(runs)]
        if width == 1:
            servers.on_stream(ends[i], 1, tokens[n % len(tokens)])
        else:
            servers.on_stream_steps(ends[i : i + width], tokens[n % len(tokens)])
        last = ends[min(i + width, len(ends)) - 1]
        for probe in (*probes, 0.0, 1.0):
            now = last + probe
            assert servers.load(now) == scanned_load(servers, now)
        for t, _ in list(servers._stream)[:3]:  # windows starting exactly at a step end
            assert servers.load(t + 1.0) == scanned_load(servers, t + 1.0)
        i += width
        n += 1
