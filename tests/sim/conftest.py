"""Fixtures for simulation tests: a constant-step-time cost model and scenario builders."""

from __future__ import annotations

from typing import Any

import pytest

from infsim.core.batch import Batch
from infsim.scenario.load import validate_scenario


class ConstantCost:
    """Every engine step takes `step_s`, whatever the batch (oracle cost model)."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s

    def step_time_s(self, batch: Batch) -> float:
        return self.step_s

    def decode_run_times_s(self, num_seqs: int, sum_context_tokens: int, k: int) -> list[float]:
        return [self.step_s] * k

    def op_times_s(self, batch: Batch) -> dict[str, float]:
        return {"overhead": self.step_s}


@pytest.fixture
def constant_step(monkeypatch: pytest.MonkeyPatch):
    """Call with a step time to make every simulation in the test use ConstantCost."""

    def install(step_s: float) -> None:
        monkeypatch.setattr(
            "infsim.sim.engine.build_cost_model", lambda _resolved: ConstantCost(step_s)
        )

    return install


NO_FRONTEND = {"request_s": 0.0, "request_per_prompt_token_s": 0.0, "output_per_step_s": 0.0,
               "output_per_token_s": 0.0}  # fmt: skip


@pytest.fixture
def make_scenario():
    def build(
        *, fast_forward: bool = True, replicas: int = 1, router: str = "round_robin", **engine: Any
    ):
        raw = {
            "name": "sim-test",
            "seed": 0,
            "model": "llama-3.1-8b",
            "hardware": {"gpu": "h100-sxm"},
            "workload": {
                "synthetic": {
                    "num_requests": 1,
                    "arrival": {"kind": "poisson", "rate_per_s": 1},
                    "prompt_tokens": {"kind": "fixed", "value": 8},
                    "output_tokens": {"kind": "fixed", "value": 1},
                }
            },
            "deployment": {"replicas": replicas},
            "router": {"kind": router},
            "engine": {"max_num_seqs": 64, "max_num_batched_tokens": 2048, **engine},
            # Engine semantics are tested without an API server in front (its own tests
            # set the frontend section).
            "frontend": dict(NO_FRONTEND),
            "simulation": {"fast_forward": fast_forward},
        }
        return validate_scenario(raw, "sim-test")

    return build
