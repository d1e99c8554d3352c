"""The API server in front of the engine (scenario `frontend`, infsim/frontend): requests
reach the scheduler after their request-path work, FIFO over the API servers; tokens reach
the client `egress_s` after their step; TTFT and E2E count from the send."""

from __future__ import annotations

import pytest

from infsim import api
from infsim.scenario.schema import FrontendSpec
from infsim.workload.trace import Trace


def _trace(arrivals: list[float], prompts: list[int], outputs: list[int] | None = None) -> Trace:
    n = len(arrivals)
    return Trace.from_columns(
        {
            "request_id": list(range(n)),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": outputs or [1] * n,
        }
    )


def _rows(result: api.RunResult, *cols: str) -> list[tuple]:
    cols = cols or ("request_id", "arrival_s", "first_scheduled_s", "first_token_s", "ttft_s")
    return [tuple(r[c] for c in cols) for r in result.requests.select(list(cols)).to_pylist()]


def _with_frontend(scenario, **costs):
    zero = {"request_s": 0.0, "request_per_prompt_token_s": 0.0, "output_per_step_s": 0.0,
            "output_per_token_s": 0.0}  # fmt: skip
    return scenario.model_copy(update={"frontend": FrontendSpec(**{**zero, **costs})})


@pytest.mark.parametrize("fast_forward", [True, False])
def test_request_path_and_token_delivery_exact(constant_step, make_scenario, fast_forward):
    # Step 0.5; API server: 0.125 per request, 0.0625 per output message + 0.015625 per
    # token (binary-exact). A and B sent at 0 (prompt 4, 2 outputs), one API server: A is
    # through at 0.125, B at 0.25 (FIFO). A: prefill [0.125, 0.625] (B arrived mid-step:
    # synchronous scheduling takes it next); step [0.625, 1.125] = A's last token + B's
    # first; B's last [1.125, 1.625]. A token reaches the client 0.0625 + 0.015625 ·
    # (b + 1) / 2 after its step (b tokens in the step): b = 1 → 0.078125, b = 2 → 0.0859375.
    constant_step(0.5)
    scen = make_scenario(fast_forward=fast_forward, async_scheduling=False)
    scen = _with_frontend(scen, request_s=0.125, output_per_step_s=0.0625,
                          output_per_token_s=0.015625)  # fmt: skip
    resolved, _ = api.prepare(scen, ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.0], [4, 4], [2, 2]))
    assert _rows(res, "first_scheduled_s", "first_token_s", "finish_s") == [
        (0.125, 0.625 + 0.078125, 1.125 + 0.0859375),
        (0.625, 1.125 + 0.0859375, 1.625 + 0.078125),
    ]


@pytest.mark.parametrize("fast_forward", [True, False])
@pytest.mark.parametrize(
    ("count", "expected"), [(1, [0.125, 0.625, 0.625]), (2, [0.125, 0.125, 0.625])]
)
def test_api_servers_take_requests_side_by_side(
    constant_step, make_scenario, fast_forward, count, expected
):
    # Three requests sent at 0, 0.125 of request work each. One API server: through at
    # 0.125, 0.25, 0.375 — the first starts a step at once, the others join the next one
    # at 0.625. Two servers: two are through at 0.125 and share the first step.
    constant_step(0.5)
    scen = make_scenario(fast_forward=fast_forward, async_scheduling=False)
    scen = _with_frontend(scen, request_s=0.125, api_server_count=count)
    resolved, _ = api.prepare(scen, ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.0, 0.0], [4, 4, 4]))
    assert res.requests.column("first_scheduled_s").to_pylist() == expected


@pytest.mark.parametrize("fast_forward", [True, False])
def test_a_longer_request_path_can_reorder_arrivals(constant_step, make_scenario, fast_forward):
    # Without queueing the request path is a fixed delay per request (1/64 s per prompt
    # token): A sent at 0 with 32 tokens reaches the engine at 0.5; B sent at 0.25 with 8
    # reaches it at 0.375 and is scheduled first: step [0.375, 0.875]. A waits for that
    # step: [0.875, 1.375]. Rows stay in trace order.
    constant_step(0.5)
    scen = make_scenario(fast_forward=fast_forward, async_scheduling=False)
    scen = _with_frontend(scen, request_per_prompt_token_s=1 / 64, queueing=False)
    resolved, _ = api.prepare(scen, ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.25], [32, 8]))
    assert _rows(res) == [
        (0, 0.0, 0.875, 1.375, 1.375),
        (1, 0.25, 0.375, 0.875, 0.625),
    ]


def test_closed_loop_sends_then_waits_the_front_end(constant_step, make_scenario):
    # One in flight: A (32 tokens) sent 0, at the engine 0.5, done 1.0; B sent at 1.0,
    # at the engine 1.125 (8 tokens), done 1.625.
    constant_step(0.5)
    scenario = _with_frontend(make_scenario(async_scheduling=False),
                              request_per_prompt_token_s=1 / 64)  # fmt: skip
    scenario = scenario.model_copy(
        update={"workload": scenario.workload.model_copy(update={"max_concurrency": 1})}
    )
    resolved, _ = api.prepare(scenario, ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.0], [32, 8]))
    assert _rows(res) == [
        (0, 0.0, 0.5, 1.0, 1.0),
        (1, 1.0, 1.125, 1.625, 0.625),
    ]
