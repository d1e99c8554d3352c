"""Host speed noise (`hardware.speed_noise`): a mean-one factor on each step's duration,
constant over windows of `correlation_s`; exact step timings with a constant-cost engine,
fast-forward identical to stepping, and the spread it puts into per-request TPOT."""

from __future__ import annotations

import numpy as np
import pytest

from infsim import api
from infsim.cost.noise import SpeedNoise
from infsim.errors import InputError
from infsim.workload.trace import Trace


def _noisy(scenario, cv: float, correlation_s: float, seed: int = 0):
    raw = scenario.model_dump()
    raw["hardware"]["speed_noise"] = {"cv": cv, "correlation_s": correlation_s}
    return scenario.model_validate({**raw, "seed": seed})


def _trace(n: int, arrivals_s: float, prompt: int, output: int) -> Trace:
    return Trace.from_columns(
        {"request_id": list(range(n)), "arrival_s": [i * arrivals_s for i in range(n)],
         "num_prompt_tokens": [prompt] * n, "num_output_tokens": [output] * n}
    )  # fmt: skip


def test_the_factor_is_constant_within_a_window_and_reproducible():
    noise = SpeedNoise(0.2, 0.5, seed=3, replica_id=1)
    assert noise.factor(0.0) == noise.factor(0.4999) != noise.factor(0.5)
    again = SpeedNoise(0.2, 0.5, seed=3, replica_id=1)
    assert [again.factor(t) for t in (7.3, 0.1, 2000.0)] == [
        noise.factor(t) for t in (7.3, 0.1, 2000.0)
    ]
    other = SpeedNoise(0.2, 0.5, seed=3, replica_id=2)
    assert other.factor(0.0) != noise.factor(0.0)


@pytest.mark.parametrize("cv", [0.05, 0.12, 0.3])
def test_speeds_have_mean_one_and_the_stated_spread(cv: float):
    noise = SpeedNoise(cv, 1.0, seed=0, replica_id=0)
    speed = 1 / np.array([noise.factor(k + 0.5) for k in range(40_000)])
    assert speed.mean() == pytest.approx(1.0, abs=4 * cv / 200)
    assert speed.std() / speed.mean() == pytest.approx(cv, rel=0.05)


def _one_request_finish_s(num_steps: int) -> float:
    """Finish of a lone request of 1 s steps under cv 0.3, 1 s windows, seed 5: step j
    starts at t_j and lasts the factor of t_j's window."""
    noise = SpeedNoise(0.3, 1.0, seed=5, replica_id=0)
    t = 0.0
    for _ in range(num_steps):
        t = t + 1.0 * noise.factor(t)
    return t


def test_each_step_takes_the_factor_of_the_window_it_starts_in(constant_step, make_scenario):
    # One request, 1 s steps, windows of 1 s: step j starts at t_j and lasts f(t_j).
    constant_step(1.0)
    scenario = _noisy(make_scenario(), cv=0.3, correlation_s=1.0, seed=5)
    resolved, _ = api.prepare(scenario, ".")
    res = api.run_resolved(resolved, _trace(1, 0.0, 8, 6))
    assert res.requests.column("finish_s").to_pylist() == [_one_request_finish_s(6)]


def test_replicas_of_a_pool_run_at_the_host_speed_too(constant_step, make_scenario):
    # deployment.pools resolve each pool as a scenario of its own: the noise must reach it.
    constant_step(1.0)
    raw = _noisy(make_scenario(), cv=0.3, correlation_s=1.0, seed=5).model_dump()
    raw["deployment"] = {"pools": [{"name": "only", "replicas": 1}]}
    resolved, _ = api.prepare(type(make_scenario()).model_validate(raw), ".")
    res = api.run_resolved(resolved, _trace(1, 0.0, 8, 6))
    assert res.requests.column("finish_s").to_pylist() == [_one_request_finish_s(6)]


def test_fast_forward_lands_on_the_same_floats_as_stepping(constant_step, make_scenario):
    constant_step(0.01)
    runs = []
    for fast_forward in (True, False):
        scenario = _noisy(make_scenario(fast_forward=fast_forward), cv=0.2, correlation_s=0.05)
        resolved, _ = api.prepare(scenario, ".")
        res = api.run_resolved(resolved, _trace(40, 0.13, 64, 50))
        runs.append(res.requests.select(["first_token_s", "finish_s"]).to_pylist())
    assert runs[0] == runs[1]


def test_noise_spreads_per_request_tpot_around_the_same_mean(constant_step, make_scenario):
    # One request at a time (arrivals 10 s apart, 1 s of decoding each): without noise every
    # TPOT is the step; with cv 0.12 over 0.1 s windows a 100-step request averages ~10
    # windows, so its TPOT spreads by ~0.12 / sqrt(10) ≈ 4 % around the same mean.
    constant_step(0.01)
    tpots = {}
    for cv in (0.0, 0.12):
        scenario = make_scenario() if cv == 0 else _noisy(make_scenario(), cv, 0.1)
        resolved, _ = api.prepare(scenario, ".")
        res = api.run_resolved(resolved, _trace(200, 10.0, 8, 101))
        tpots[cv] = np.array(res.requests.column("tpot_s").to_pylist())
    assert np.ptp(tpots[0.0]) == pytest.approx(0.0, abs=1e-12)
    spread = tpots[0.12].std() / tpots[0.12].mean()
    assert 0.025 < spread < 0.06
    assert tpots[0.12].mean() == pytest.approx(0.01, rel=0.01)


def test_noise_with_pipeline_parallelism_is_refused(make_scenario):
    scenario = _noisy(make_scenario(), cv=0.1, correlation_s=1.0)
    deployment = scenario.deployment.model_copy(update={"pipeline_parallel": 2})
    scenario = scenario.model_copy(update={"deployment": deployment})
    with pytest.raises(InputError, match="speed_noise is not modelled"):
        api.prepare(scenario, ".")
