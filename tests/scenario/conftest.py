"""A minimal valid scenario (as a raw mapping) shared by the scenario tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

MINIMAL = {
    "model": "llama-3.1-8b",
    "hardware": {"gpu": "h100-sxm"},
    "workload": {
        "synthetic": {
            "num_requests": 10,
            "arrival": {"kind": "poisson", "rate_per_s": 1.0},
            "prompt_tokens": {"kind": "fixed", "value": 100},
            "output_tokens": {"kind": "fixed", "value": 10},
        }
    },
}


@pytest.fixture
def raw_scenario() -> Callable[..., dict[str, Any]]:
    """`raw_scenario(engine={...}, ...)`: a fresh deep copy with sections replaced."""

    def build(**sections: Any) -> dict[str, Any]:
        raw = copy.deepcopy(MINIMAL)
        raw.update(sections)
        return raw

    return build
