"""The API server: costs, the FIFO queue with streaming load, and resolution of defaults."""

from __future__ import annotations

import pandas as pd
import pytest

from infsim.frontend.api_server import MAX_LOAD, ApiServers
from infsim.frontend.costs import HOST_DEFAULTS, FrontendCosts, resolve_costs
from infsim.scenario.schema import FrontendSpec


def costs(**kw) -> FrontendCosts:
    base = {"api_server_count": 1, "request_s": 0.1, "request_per_prompt_token_s": 0.001,
            "output_per_step_s": 0.02, "output_per_token_s": 0.004}  # fmt: skip
    return FrontendCosts(**{**base, **kw})


def test_request_work_and_egress() -> None:
    c = costs()
    assert c.request_work_s(100) == pytest.approx(0.2)
    # One server, 9 tokens in the step: the message (0.02) + on average 5 tokens' writes.
    assert c.egress_s(9) == pytest.approx(0.02 + 0.004 * 5)
    # Two servers split the tokens: 4.5 each, a token waits for (4.5 + 1) / 2 of them.
    assert costs(api_server_count=2).egress_s(9) == pytest.approx(0.02 + 0.004 * 2.75)
    assert costs(api_server_count=2).stream_work_s(3, 10) == pytest.approx(2 * 3 * 0.02 + 0.04)


def test_fifo_over_servers_exact() -> None:
    servers = ApiServers(costs(api_server_count=2, request_per_prompt_token_s=0.0))
    # Three requests at t = 0 on two idle servers: 0.1, 0.1, then the third waits.
    assert [servers.admit(0.0, 10) for _ in range(3)] == pytest.approx([0.1, 0.1, 0.2])
    assert servers.admit(0.5, 10) == pytest.approx(0.6)  # both free again


def test_streaming_load_stretches_request_work() -> None:
    c = costs(request_per_prompt_token_s=0.0, output_per_token_s=0.001)
    servers = ApiServers(c, window_s=1.0)
    # 0.25 s of streaming work per second: 10 steps of 0.02 + 5 tokens × 0.001 s.
    for i in range(10):
        servers.on_stream(0.1 * (i + 1), 1, 5)
    assert servers.load(1.0) == pytest.approx(0.25)
    assert servers.admit(1.0, 0) == pytest.approx(1.0 + 0.1 / 0.75)
    assert servers.load(5.0) == 0.0  # the window has moved past the streaming


def test_saturated_front_end_stays_finite() -> None:
    servers = ApiServers(costs(request_per_prompt_token_s=0.0))
    servers.on_stream(1.0, 100, 0)  # 2 s of work in a 1 s window
    assert servers.load(1.0) == MAX_LOAD


def test_no_queueing_is_a_fixed_delay() -> None:
    servers = ApiServers(costs(queueing=False, request_per_prompt_token_s=0.0))
    servers.on_stream(0.5, 100, 0)
    assert [servers.admit(1.0, 5) for _ in range(3)] == pytest.approx([1.1, 1.1, 1.1])


def test_defaults_table_line_and_scenario_values() -> None:
    spec = FrontendSpec()
    c = resolve_costs(spec, None, None)
    assert (c.request_s, c.request_per_prompt_token_s) == (
        HOST_DEFAULTS["request_s"], HOST_DEFAULTS["request_per_prompt_token_s"])  # fmt: skip
    assert "live host" in c.source
    # A table's fitted line (one-in-flight TTFT residual) holds the first token's way back:
    # the request path is the line minus egress_s(1).
    rows = pd.DataFrame({"op": ["frontend", "frontend", "gemm"], "num_tokens": [100, 300, 1],
                         "time_s": [0.006, 0.008, 1.0]})  # fmt: skip
    c = resolve_costs(spec, rows, "my-table")
    back = HOST_DEFAULTS["output_per_step_s"] + HOST_DEFAULTS["output_per_token_s"]
    assert c.request_per_prompt_token_s == pytest.approx(1e-5)
    assert c.request_s == pytest.approx(0.005 - back)
    assert "my-table" in c.source
    c = resolve_costs(FrontendSpec(request_s=0.5, api_server_count=4), rows, "my-table")
    assert (c.request_s, c.api_server_count) == (0.5, 4)
    assert "scenario: request_s" in c.source
