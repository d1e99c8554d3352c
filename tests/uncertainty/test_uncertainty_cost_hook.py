"""The cost-model multiplier hook (infsim/cost/perturb.py): outside a `scaling` block every
price is unchanged; inside, each op class is scaled by its factor, and the fast-forwarded
decode runs still equal per-step pricing bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.core.batch import Batch
from infsim.core.request import RequestState
from infsim.cost import perturb
from infsim.cost.factory import build_cost_model
from infsim.cost.perturb import OpMultipliers, scaling
from infsim.scenario.load import load_scenario, validate_scenario
from infsim.scenario.resolve import resolve

REPO = Path(__file__).resolve().parents[2]


def roofline_config():
    raw = {"model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm"},
           "workload": {"synthetic": {"num_requests": 1,
                        "arrival": {"kind": "poisson", "rate_per_s": 1},
                        "prompt_tokens": {"kind": "fixed", "value": 10},
                        "output_tokens": {"kind": "fixed", "value": 10}}}}  # fmt: skip
    return resolve(validate_scenario(raw, "t"), Path()).replica()


def calibrated_config():
    path = REPO / "scenarios" / "vllm-cpu-tiny-llama.yaml"
    return resolve(load_scenario(path), path.parent).replica()


def mixed_batch() -> Batch:
    batch = Batch()
    for i, (q, c) in enumerate([(1, 300), (1, 900), (200, 0)]):
        req = RequestState(index=i, request_id=i, arrival_s=0.0, num_prompt_tokens=q + c,
                           num_output_tokens=50)  # fmt: skip
        if q == 1:
            req.num_output_done = 1
        req.num_computed_tokens = c
        batch.add(req, q)
    return batch


@pytest.mark.parametrize("config", [roofline_config, calibrated_config])
def test_each_class_scales_its_own_ops(config) -> None:
    cfg = config()
    base = build_cost_model(cfg).op_times_s(mixed_batch())
    with scaling(OpMultipliers(attention=2.0, overhead=3.0)):
        assert perturb.active() == OpMultipliers(attention=2.0, overhead=3.0)
        model = build_cost_model(cfg)
    assert perturb.active() is None
    ops = model.op_times_s(mixed_batch())
    assert ops["attention"] == pytest.approx(2.0 * base["attention"], rel=1e-12)
    assert ops["overhead"] == pytest.approx(3.0 * base["overhead"], rel=1e-12)
    dense = [k for k in base if k not in ("attention", "overhead")]
    assert sum(ops[k] for k in dense) == pytest.approx(sum(base[k] for k in dense), rel=1e-12)
    with scaling(OpMultipliers.uniform(1.1)):
        uniform = build_cost_model(cfg)
    assert uniform.step_time_s(mixed_batch()) == pytest.approx(
        1.1 * build_cost_model(cfg).step_time_s(mixed_batch()), rel=1e-9
    )


@pytest.mark.parametrize("config", [roofline_config, calibrated_config])
def test_scaled_decode_runs_equal_scaled_steps_bitwise(config) -> None:
    with scaling(OpMultipliers(dense=0.8, attention=1.3, lm_head=1.1, overhead=0.9)):
        model = build_cost_model(config())
    contexts = [120, 400, 33]
    run = model.decode_run_times_s(len(contexts), sum(contexts), 5)
    for j in range(5):
        batch = Batch()
        for i, c in enumerate(contexts):
            req = RequestState(index=i, request_id=i, arrival_s=0.0, num_prompt_tokens=c + j,
                               num_output_tokens=10**6)  # fmt: skip
            req.num_output_done = 1
            req.num_computed_tokens = c + j
            batch.add(req, 1)
        assert run[j] == model.step_time_s(batch)


def test_a_factor_must_be_positive_and_finite() -> None:
    with pytest.raises(ValueError, match="dense"):
        OpMultipliers(dense=0.0)
    with pytest.raises(ValueError, match="overhead"):
        OpMultipliers(overhead=float("inf"))
