"""The front end's latency (cost_model.frontend_latency_s): a request reaches the engine
that long after it is sent, and its TTFT counts from the send."""

from __future__ import annotations

import pytest

from infsim import api
from infsim.workload.trace import Trace


@pytest.fixture
def frontend_cost(constant_step) -> None:
    constant_step(0.5, frontend_s_per_token=1 / 64)  # binary-exact times


def _trace(arrivals: list[float], prompts: list[int]) -> Trace:
    n = len(arrivals)
    return Trace.from_columns(
        {
            "request_id": list(range(n)),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": [1] * n,
        }
    )


def _rows(result: api.RunResult) -> list[tuple]:
    cols = ("request_id", "arrival_s", "first_scheduled_s", "first_token_s", "ttft_s")
    return [tuple(r[c] for c in cols) for r in result.requests.select(list(cols)).to_pylist()]


@pytest.mark.parametrize("fast_forward", [True, False])
def test_a_longer_front_end_can_reorder_arrivals(frontend_cost, make_scenario, fast_forward):
    # A sent at 0 with 32 prompt tokens reaches the engine at 0.5; B sent at 0.25 with 8
    # reaches it at 0.375 and is scheduled first: step [0.375, 0.875]. A waits for that
    # step: [0.875, 1.375]. Rows stay in trace order.
    resolved, _ = api.prepare(make_scenario(fast_forward=fast_forward), ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.25], [32, 8]))
    assert _rows(res) == [
        (0, 0.0, 0.875, 1.375, 1.375),
        (1, 0.25, 0.375, 0.875, 0.625),
    ]


def test_closed_loop_sends_then_waits_the_front_end(frontend_cost, make_scenario):
    # One in flight: A (32 tokens) sent 0, at the engine 0.5, done 1.0; B sent at 1.0,
    # at the engine 1.125 (8 tokens), done 1.625.
    scenario = make_scenario()
    scenario = scenario.model_copy(
        update={"workload": scenario.workload.model_copy(update={"max_concurrency": 1})}
    )
    resolved, _ = api.prepare(scenario, ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.0], [32, 8]))
    assert _rows(res) == [
        (0, 0.0, 0.5, 1.0, 1.0),
        (1, 1.0, 1.125, 1.625, 0.625),
    ]
