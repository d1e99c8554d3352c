"""Closed-loop clients (`workload.max_concurrency`): exact timings with a constant step
time, and the defining invariant of a closed loop on random workloads."""

from __future__ import annotations

import numpy as np
import pytest

from infsim import api
from infsim.workload.trace import Trace


def _trace(arrivals: list[float], prompts: list[int], outputs: list[int]) -> Trace:
    return Trace.from_columns(
        {
            "request_id": list(range(len(arrivals))),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": outputs,
        }
    )


def _limited(scenario, limit: int):
    workload = scenario.workload.model_copy(update={"max_concurrency": limit})
    return scenario.model_copy(update={"workload": workload})


def _rows(result: api.RunResult, *cols: str) -> list[tuple]:
    return [tuple(r[c] for c in cols) for r in result.requests.select(list(cols)).to_pylist()]


@pytest.mark.parametrize("fast_forward", [True, False])
def test_async_send_after_a_finish_waits_for_the_step_decided_ahead(
    constant_step, make_scenario, fast_forward
):
    # As above, with async scheduling (vLLM >= 0.14): when step [1.0, 1.5] is launched the
    # engine decides [1.5, 2.0] at once, and only then processes A's last token, which
    # frees the client's slot. So C, sent at 1.0, first runs in [2.0, 2.5].
    constant_step(0.5)
    scen = make_scenario(fast_forward=fast_forward, async_scheduling=True)
    resolved, _ = api.prepare(_limited(scen, 2), ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.0, 0.0], [4, 4, 4], [2, 4, 2]))
    assert _rows(res, "arrival_s", "first_scheduled_s", "first_token_s", "finish_s") == [
        (0.0, 0.0, 0.5, 1.0),
        (0.0, 0.0, 0.5, 2.0),
        (1.0, 2.0, 2.5, 3.0),
    ]


@pytest.mark.parametrize("fast_forward", [True, False])
def test_next_request_is_sent_when_a_slot_frees(constant_step, make_scenario, fast_forward):
    # Step 0.5 s, at most 2 in flight, all three ready at t = 0.
    #   A (2 out), B (4 out) sent at 0: step [0, .5] prefills both; A's 2nd token ends
    #   [.5, 1.0] -> A done at 1.0, which frees a slot: C is sent at 1.0. The engine has
    #   already started B's next step [1.0, 1.5] (as vLLM does), so C is scheduled at 1.5:
    #   first token 2.0, done 2.5. B: tokens .5, 1.0, 1.5, 2.0.
    constant_step(0.5)
    scen = make_scenario(fast_forward=fast_forward, async_scheduling=False)
    resolved, _ = api.prepare(_limited(scen, 2), ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.0, 0.0], [4, 4, 4], [2, 4, 2]))
    assert _rows(res, "arrival_s", "first_scheduled_s", "first_token_s", "finish_s") == [
        (0.0, 0.0, 0.5, 1.0),
        (0.0, 0.0, 0.5, 2.0),
        (1.0, 1.5, 2.0, 2.5),
    ]
    # Latencies count from the send time, as the benchmark client measures them.
    assert [r[0] for r in _rows(res, "ttft_s")] == [0.5, 0.5, 1.0]


def test_a_later_arrival_is_not_sent_early(constant_step, make_scenario) -> None:
    # The limit only delays: a request whose arrival is after a slot frees keeps its time.
    constant_step(0.5)
    resolved, _ = api.prepare(_limited(make_scenario(), 1), ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.2, 3.0], [4, 4, 4], [2, 2, 2]))
    assert [r[0] for r in _rows(res, "arrival_s")] == [0.0, 1.0, 3.0]


def test_rejected_request_frees_its_slot(constant_step, make_scenario) -> None:
    # max_model_len 16: the second request (10 + 10) is rejected on arrival; the third is
    # sent at once instead of waiting forever.
    constant_step(0.5)
    resolved, _ = api.prepare(_limited(make_scenario(max_model_len=16), 1), ".")
    res = api.run_resolved(resolved, _trace([0.0, 0.0, 0.0], [4, 10, 4], [2, 10, 2]))
    assert _rows(res, "status") == [("finished",), ("rejected",), ("finished",)]
    assert [r[0] for r in _rows(res, "arrival_s")] == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("limit", [1, 3, 8])
def test_in_flight_never_exceeds_the_limit_and_slots_refill_at_once(
    make_scenario, seed: int, limit: int
) -> None:
    # Real cost model, random lengths, everything ready at 0: a closed loop keeps exactly
    # `limit` requests in flight while a backlog exists, so every request after the first
    # `limit` is sent at the finish time of an earlier one.
    rng = np.random.default_rng(seed)
    n = 40
    trace = _trace([0.0] * n, rng.integers(16, 600, n).tolist(), rng.integers(1, 40, n).tolist())
    resolved, _ = api.prepare(_limited(make_scenario(), limit), ".")
    res = api.run_resolved(resolved, trace)
    arrival = np.array([r[0] for r in _rows(res, "arrival_s")])
    finish = np.array([r[0] for r in _rows(res, "finish_s")])
    # (Send times are simulated-clock values; finish times are the replica's exact step-end
    # sums: they agree to within float rounding.)
    eps = 1e-9
    for t in np.concatenate([arrival, finish]):
        assert int(((arrival <= t) & (t < finish - eps)).sum()) <= limit
    order = np.argsort(arrival, kind="stable")
    assert all(arrival[i] == 0.0 for i in order[:limit])
    assert all(np.isclose(finish, arrival[i], rtol=0, atol=eps).any() for i in order[limit:])
    # Little's law over the busy period: time-average in flight = limit until the backlog
    # runs out, so sum(E2E) >= limit * (time of the last send).
    assert (finish - arrival).sum() >= limit * arrival.max() - 1e-9
