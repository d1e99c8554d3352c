"""Queueing and latency oracles: unloaded request, M/D/1 (Pollaczek-Khinchine), M/M/inf.

Oracle times are computed independently of the replica loop: from the cost model's
`step_time_s` on hand-built batches, or from closed-form queueing results.
"""

from __future__ import annotations

import numpy as np
import pytest

from infsim import api
from infsim.core.batch import Batch
from infsim.core.request import RequestState
from infsim.sim.engine import build_cost_model
from infsim.workload.trace import Trace


def trace(arrivals, prompts, outputs) -> Trace:
    n = len(arrivals)
    return Trace.from_columns(
        {
            "request_id": np.arange(n),
            "arrival_s": np.asarray(arrivals, dtype=np.float64),
            "num_prompt_tokens": np.broadcast_to(prompts, n).copy(),
            "num_output_tokens": np.broadcast_to(outputs, n).copy(),
        }
    )


def col(res: api.RunResult, name: str) -> np.ndarray:
    return res.requests.column(name).to_numpy(zero_copy_only=False)


def one_row_batch(new: int, context: int, total: int) -> Batch:
    req = RequestState(
        index=0, request_id=0, arrival_s=0.0, num_prompt_tokens=total, num_output_tokens=1
    )
    req.num_computed_tokens = context
    batch = Batch()
    batch.add(req, new)
    return batch


@pytest.mark.parametrize("fast_forward", [True, False])
def test_unloaded_request_ttft_and_e2e(make_scenario, fast_forward: bool) -> None:
    # One request alone (prompt 700 < budget 2048, 12 outputs), roofline cost model.
    # TTFT = one prefill step (700 new tokens, context 0, 1 sampled row);
    # E2E = TTFT + 11 decode steps with contexts 700 .. 710.
    resolved, _ = api.prepare(make_scenario(fast_forward=fast_forward), ".")
    cm = build_cost_model(resolved.replica())
    prompt, out, arrival = 700, 12, 1.5
    t = arrival + cm.step_time_s(one_row_batch(prompt, 0, prompt))
    first = t
    for j in range(out - 1):
        t += cm.step_time_s(one_row_batch(1, prompt + j, prompt + j + 1))
    res = api.run_resolved(resolved, trace([arrival], prompt, out))
    assert col(res, "first_scheduled_s")[0] == arrival
    assert col(res, "first_token_s")[0] == first
    assert col(res, "finish_s")[0] == t
    assert col(res, "ttft_s")[0] == pytest.approx(first - arrival, rel=1e-12)
    assert first - arrival > 0.001  # a real prefill, not a trivial overhead


def md1_mean_wait(rho: float, service_s: float) -> float:
    """Pollaczek-Khinchine mean wait in queue for M/D/1."""
    return rho * service_s / (2 * (1 - rho))


def mm1_mean_wait(rho: float, service_s: float) -> float:
    return rho * service_s / (1 - rho)


@pytest.mark.parametrize(("rho", "seed"), [(0.5, 11), (0.8, 12)])
def test_batch_size_one_engine_is_md1(constant_step, make_scenario, rho: float, seed: int) -> None:
    # max_num_seqs 1 and one output token: each request is exactly one step of D, served
    # FCFS; Poisson arrivals at rate rho / D make an M/D/1 queue. Wait in queue =
    # first_scheduled - arrival. With 20k requests the relative standard deviation of
    # the estimate (Lindley recursion over 200 seeds) is 2.5% at rho 0.5 and 5.3% at
    # 0.8; the tolerances are 3 of those. M/M/1's mean wait is twice P-K's: rejected.
    service = 1.0
    constant_step(service)
    rng = np.random.default_rng(seed)
    n = 20_000
    arrivals = np.cumsum(rng.exponential(service / rho, n))
    resolved, _ = api.prepare(make_scenario(max_num_seqs=1), ".")
    res = api.run_resolved(resolved, trace(arrivals, 4, 1))
    wait = col(res, "first_scheduled_s") - col(res, "arrival_s")
    assert np.all(wait >= 0)
    # Service is exactly one step: e2e - wait == D.
    np.testing.assert_allclose(col(res, "e2e_s") - wait, service, rtol=0, atol=1e-6)
    mean = float(wait[n // 20 :].mean())  # drop the warm-up
    expected = md1_mean_wait(rho, service)
    tol = 0.075 if rho <= 0.5 else 0.16
    assert mean == pytest.approx(expected, rel=tol)
    assert abs(mean - mm1_mean_wait(rho, service)) > 0.3 * mm1_mean_wait(rho, service)
    # Fraction of requests that find the server idle = 1 - rho (PASTA).
    assert np.mean(wait == 0) == pytest.approx(1 - rho, abs=0.02)


def test_light_load_many_replicas_zero_wait(constant_step, make_scenario) -> None:
    # M/M/inf-like: 16 replicas routed by least outstanding requests, Poisson arrivals at
    # 2/s, each request 3 steps of 0.1 s: at most a handful in the system, so every
    # request finds an idle replica and starts at its arrival instant.
    constant_step(0.1)
    rng = np.random.default_rng(5)
    arrivals = np.cumsum(rng.exponential(0.5, 2000))
    scen = make_scenario(replicas=16, router="least_outstanding_requests", max_num_seqs=1)
    resolved, _ = api.prepare(scen, ".")
    res = api.run_resolved(resolved, trace(arrivals, 8, 3))
    np.testing.assert_array_equal(col(res, "first_scheduled_s"), col(res, "arrival_s"))
    np.testing.assert_allclose(col(res, "e2e_s"), 0.3, rtol=1e-9)


def test_light_load_single_replica_waits_at_most_one_step(constant_step, make_scenario) -> None:
    # One replica with room for everybody (max_num_seqs 1024): a request never waits in
    # the queue for capacity, only for the step in progress (< one step), and a request
    # arriving at an idle replica starts at its arrival instant.
    step = 0.01
    constant_step(step)
    rng = np.random.default_rng(6)
    arrivals = np.cumsum(rng.exponential(0.05, 3000))
    resolved, _ = api.prepare(make_scenario(max_num_seqs=1024, async_scheduling=False), ".")
    res = api.run_resolved(resolved, trace(arrivals, 8, 20))
    wait = col(res, "first_scheduled_s") - col(res, "arrival_s")
    assert np.all(wait >= 0)
    assert np.all(wait < step)
    finish = col(res, "finish_s")
    idle = np.ones(len(arrivals), dtype=bool)
    idle[1:] = arrivals[1:] > np.maximum.accumulate(finish)[:-1]
    assert idle.sum() > 20
    np.testing.assert_array_equal(wait[idle], 0.0)
    assert np.any(wait > 0)  # some arrivals did land mid-step


def test_light_load_async_waits_at_most_two_steps(constant_step, make_scenario) -> None:
    # Async scheduling: the step after the one in progress is already decided, so a request
    # arriving at a busy replica waits more than one step and less than two (the step in
    # progress plus the one decided ahead) unless that step ahead was empty; one arriving
    # at an idle replica still starts at its arrival instant.
    step = 0.01
    constant_step(step)
    rng = np.random.default_rng(6)
    arrivals = np.cumsum(rng.exponential(0.05, 3000))
    resolved, _ = api.prepare(make_scenario(max_num_seqs=1024, async_scheduling=True), ".")
    res = api.run_resolved(resolved, trace(arrivals, 8, 20))
    wait = col(res, "first_scheduled_s") - col(res, "arrival_s")
    assert np.all(wait >= 0)
    assert np.all(wait < 2 * step + 1e-12)
    finish = col(res, "finish_s")
    idle = np.ones(len(arrivals), dtype=bool)
    idle[1:] = arrivals[1:] > np.maximum.accumulate(finish)[:-1]
    np.testing.assert_array_equal(wait[idle], 0.0)
    busy = ~idle
    assert np.mean(wait[busy] > step) > 0.5  # most busy arrivals pay the step decided ahead
