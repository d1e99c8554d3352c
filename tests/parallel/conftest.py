"""Resolve scenarios for the parallelism tests (roofline, H100 unless told)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infsim.scenario.load import validate_scenario
from infsim.scenario.resolve import ResolvedScenario, resolve


@pytest.fixture
def resolved():
    def build(model: str = "llama-3.1-70b", gpu: str = "h100-sxm", **sections: Any):
        raw: dict[str, Any] = {
            "model": model,
            "hardware": {"gpu": gpu, **sections.pop("hardware", {})},
            "workload": {
                "synthetic": {
                    "num_requests": 1,
                    "arrival": {"kind": "poisson", "rate_per_s": 1},
                    "prompt_tokens": {"kind": "fixed", "value": 8},
                    "output_tokens": {"kind": "fixed", "value": 1},
                }
            },
            **sections,
        }
        rs: ResolvedScenario = resolve(validate_scenario(raw, "t.yaml"), Path(), "t.yaml")
        return rs

    return build
