"""The API servers' streaming load: a fast-forwarded run streamed at once equals streaming
its steps one by one (infsim/frontend/api_server.py)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.frontend.api_server import ApiServers
from infsim.frontend.costs import FrontendCosts

COSTS = FrontendCosts(api_server_count=2, request_s=1e-3, request_per_prompt_token_s=1e-6,
                      output_per_step_s=1e-3, output_per_token_s=5e-5, queueing=True)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 0.3, allow_nan=False), min_size=0, max_size=40),
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
    bulk.on_stream_steps(ends, num_tokens)
    assert list(bulk._stream) == list(one._stream)
    assert (bulk._stream_total_s, bulk._base_s) == (one._stream_total_s, one._base_s)
    later = (ends[-1] if ends else start) + 0.25
    assert bulk.load(later) == one.load(later)
