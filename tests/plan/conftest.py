"""A tiny scenario for the plan tests (each point simulates 60 requests in ~0.05 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

TINY: dict[str, Any] = {
    "name": "plan-test",
    "seed": 5,
    "model": "llama-3.1-8b",
    "hardware": {"gpu": "h100-sxm"},
    "workload": {
        "synthetic": {
            "num_requests": 60,
            "arrival": {"kind": "poisson", "rate_per_s": 4.0},
            "prompt_tokens": {"kind": "uniform", "min": 100, "max": 800},
            "output_tokens": {"kind": "uniform", "min": 10, "max": 120},
        }
    },
    "slo": {"ttft_s": 0.5, "tpot_s": 0.05},
}


@pytest.fixture(scope="session")
def tiny_text() -> str:
    return yaml.safe_dump(TINY, sort_keys=False)


@pytest.fixture
def tiny(tmp_path: Path, tiny_text: str) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(tiny_text)
    return path
