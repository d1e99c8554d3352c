"""Exact scenarios with a constant step time (0.5 s) and hand-derived timings.

The synthetic workload of the scenario is ignored: each test injects its own trace with
`api.run_resolved`. Times are multiples of 0.5 s, exact in binary floating point.
"""

from __future__ import annotations

import pytest

from infsim import api
from infsim.workload.trace import Trace


def trace(arrivals: list[float], prompts: list[int], outputs: list[int]) -> Trace:
    return Trace.from_columns(
        {
            "request_id": list(range(len(arrivals))),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": outputs,
        }
    )


def rows(result: api.RunResult, *cols: str) -> list[tuple]:
    table = result.requests.select(list(cols)).to_pylist()
    return [tuple(r[c] for c in cols) for r in table]


@pytest.mark.parametrize("fast_forward", [True, False])
def test_three_requests_exact_times(constant_step, make_scenario, fast_forward: bool) -> None:
    # Step time 0.5 s, token budget 8, chunked prefill.
    #   A arrives 0.0 (prompt 6, 3 out); B arrives 0.2 (prompt 10, 2 out);
    #   C arrives 1.2 (prompt 3, 1 out).
    # step 1 [0.0, 0.5]: A 6 tokens (B has not arrived)        -> A token 1 at 0.5
    # step 2 [0.5, 1.0]: A 1 (decode), B 7 of 10 (budget 8)    -> A token 2 at 1.0
    # step 3 [1.0, 1.5]: A 1, B 3 (C arrived mid-step, waits)  -> A token 3, done at 1.5;
    #                                                             B token 1 at 1.5
    # step 4 [1.5, 2.0]: B 1, C 3                              -> B done at 2.0;
    #                                                             C token 1 = done at 2.0
    constant_step(0.5)
    resolved, _ = api.prepare(
        make_scenario(fast_forward=fast_forward, max_num_batched_tokens=8, async_scheduling=False),
        ".",
    )
    res = api.run_resolved(resolved, trace([0.0, 0.2, 1.2], [6, 10, 3], [3, 2, 1]))
    assert rows(res, "request_id", "first_scheduled_s", "first_token_s", "finish_s") == [
        (0, 0.0, 0.5, 1.5),
        (1, 0.5, 1.5, 2.0),
        (2, 1.5, 2.0, 2.0),
    ]
    assert rows(res, "status") == [("finished",)] * 3
    ttft = [r[0] for r in rows(res, "ttft_s")]
    assert ttft == pytest.approx([0.5, 1.3, 0.8])
    # TPOT = (e2e - ttft) / (out - 1): A (1.5 - 0.5) / 2, B (2.0 - 1.5) / 1, C none.
    tpot = [r[0] for r in rows(res, "tpot_s")]
    assert tpot[:2] == [0.5, 0.5]
    assert tpot[2] is None  # undefined for a single output token
    tl = res.timeline
    assert sum(tl.column("num_steps").to_pylist()) == 4
    assert tl.column("start_s").to_pylist()[0] == 0.0
    assert tl.column("end_s").to_pylist()[-1] == 2.0
    assert res.summary["latency_s"]["itl"]["mean"] == 0.5


@pytest.mark.parametrize("fast_forward", [True, False])
def test_three_requests_exact_times_async(constant_step, make_scenario, fast_forward) -> None:
    # The same three requests with async scheduling: each decision is made when the step
    # before it starts, so a request arriving during step j first runs in step j + 2.
    # step 1 [0.0, 0.5]: A 6 (the engine was idle: A starts at its arrival)
    # step 2 [0.5, 1.0]: A 1 — decided at 0.0, before B arrived at 0.2  -> A token 2 at 1.0
    # step 3 [1.0, 1.5]: A 1, B 7 of 10                                 -> A done at 1.5
    # step 4 [1.5, 2.0]: B 3 — decided at 1.0, before C arrived at 1.2  -> B token 1 at 2.0
    # step 5 [2.0, 2.5]: B 1, C 3                                       -> B, C done at 2.5
    constant_step(0.5)
    resolved, _ = api.prepare(
        make_scenario(fast_forward=fast_forward, max_num_batched_tokens=8, async_scheduling=True),
        ".",
    )
    res = api.run_resolved(resolved, trace([0.0, 0.2, 1.2], [6, 10, 3], [3, 2, 1]))
    assert rows(res, "request_id", "first_scheduled_s", "first_token_s", "finish_s") == [
        (0, 0.0, 0.5, 1.5),
        (1, 1.0, 2.0, 2.5),
        (2, 2.0, 2.5, 2.5),
    ]
    assert [r[0] for r in rows(res, "ttft_s")] == pytest.approx([0.5, 1.8, 1.3])
    assert sum(res.timeline.column("num_steps").to_pylist()) == 5


def test_idle_gap_restarts_clock_at_arrival(constant_step, make_scenario) -> None:
    # A finishes at 1.0 (prompt + 1 decode); the replica idles; B arriving at 3.25 starts
    # its step at 3.25, not at a step boundary.
    constant_step(0.5)
    resolved, _ = api.prepare(make_scenario(), ".")
    res = api.run_resolved(resolved, trace([0.0, 3.25], [4, 4], [2, 1]))
    assert rows(res, "first_scheduled_s", "first_token_s", "finish_s") == [
        (0.0, 0.5, 1.0),
        (3.25, 3.75, 3.75),
    ]


def test_rejected_request_is_recorded_and_others_run(constant_step, make_scenario) -> None:
    # max_model_len 16: B (10 + 10 tokens) is rejected on arrival; A and C run.
    constant_step(0.5)
    resolved, _ = api.prepare(make_scenario(max_model_len=16), ".")
    res = api.run_resolved(resolved, trace([0.0, 0.1, 0.2], [4, 10, 4], [1, 10, 1]))
    assert rows(res, "status") == [("finished",), ("rejected",), ("finished",)]
    reason = rows(res, "reject_reason")[1][0]
    assert reason == "prompt+output 20 tokens > max_model_len 16"
    assert rows(res, "finish_s") == [(0.5,), (None,), (1.0,)]
    assert res.summary["requests"]["rejected"] == 1


@pytest.mark.parametrize("fast_forward", [False, True])
@pytest.mark.parametrize(
    ("async_on", "expected_b"), [(False, (2.0, 2.25, 2.75)), (True, (2.25, 2.5, 3.0))]
)
def test_arrival_on_step_boundary_admitted_next_step(
    constant_step, make_scenario, fast_forward: bool, async_on: bool, expected_b: tuple
) -> None:
    # Step time 0.25. A (prompt 4, 20 out) arrives at 0: prefill [0, 0.25], then decodes.
    # B arrives at exactly 2.0, the end of A's 8th step; the arrival event was scheduled
    # (at t=0) before that step's end, so stepping one by one admits B in the step
    # [2.0, 2.25] -> first token 2.25, finish 2.75 (3 outputs). With async scheduling that
    # step was decided at 1.75, so B runs from 2.25: first token 2.5, finish 3.0.
    constant_step(0.25)
    scen = make_scenario(fast_forward=fast_forward, async_scheduling=async_on)
    resolved, _ = api.prepare(scen, ".")
    res = api.run_resolved(resolved, trace([0.0, 2.0], [4, 4], [20, 3]))
    got = rows(res, "first_scheduled_s", "first_token_s", "finish_s")
    assert got[0] == (0.0, 0.25, 5.0)
    assert got[1] == expected_b


def test_round_robin_router_assignment(constant_step, make_scenario) -> None:
    constant_step(0.5)
    resolved, _ = api.prepare(make_scenario(replicas=3, router="round_robin"), ".")
    res = api.run_resolved(resolved, trace([0.1 * i for i in range(7)], [4] * 7, [50] * 7))
    assert [r[0] for r in rows(res, "replica_id")] == [0, 1, 2, 0, 1, 2, 0]
    replicas = set(res.timeline.column("replica_id").to_pylist())
    assert replicas == {0, 1, 2}


def test_least_outstanding_requests_router_assignment(constant_step, make_scenario) -> None:
    # 3 replicas, step 0.5 s. A (0.0, long) -> r0; B (0.1, 1 output) -> r1, finishes at
    # 0.6; C (0.2, long) -> r2. At 1.0 outstanding = [1, 0, 1]: D -> r1. At 1.1 all hold
    # one: E -> r0 (ties go to the lowest index). At 1.2 [2, 1, 1]: F -> r1.
    constant_step(0.5)
    resolved, _ = api.prepare(make_scenario(replicas=3, router="least_outstanding_requests"), ".")
    res = api.run_resolved(
        resolved,
        trace([0.0, 0.1, 0.2, 1.0, 1.1, 1.2], [4] * 6, [100, 1, 100, 100, 100, 100]),
    )
    assert [r[0] for r in rows(res, "replica_id")] == [0, 1, 2, 1, 0, 1]


@pytest.mark.parametrize("fast_forward", [False, True])
@pytest.mark.parametrize(("async_on", "expected"), [(False, (1.25, 1.5, 1.75)),
                                                    (True, (1.5, 1.75, 2.0))])  # fmt: skip
def test_arrival_at_step_end_after_an_arrival_inside_that_step(
    constant_step, make_scenario, fast_forward: bool, async_on: bool, expected: tuple
) -> None:
    # Step time 0.25. A (prompt 4, 20 out) decodes from 0.25 on. B arrives at 1.1, inside
    # the step [1.0, 1.25]; C arrives at exactly 1.25, that step's end. C's arrival event
    # is created at 1.1, after the step-end event, yet arrivals are URGENT, so C still
    # joins the step [1.25, 1.5] together with B: both get their first token at 1.5.
    # Async: [1.25, 1.5] was decided at 1.0, before B; [1.5, 1.75] is decided at 1.25,
    # after C's URGENT arrival, so both run from 1.5.
    constant_step(0.25)
    scen = make_scenario(fast_forward=fast_forward, async_scheduling=async_on)
    resolved, _ = api.prepare(scen, ".")
    res = api.run_resolved(resolved, trace([0.0, 1.1, 1.25], [4, 4, 4], [20, 2, 2]))
    got = rows(res, "first_scheduled_s", "first_token_s", "finish_s")
    assert got[1] == expected
    assert got[2] == expected
