"""Small scenarios and axes files for the sweep tests (each point simulates in ~0.05 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "name": "sweep-test",
    "seed": 3,
    "model": "llama-3.1-8b",
    "hardware": {"gpu": "h100-sxm"},
    "workload": {
        "synthetic": {
            "num_requests": 80,
            "arrival": {"kind": "poisson", "rate_per_s": 4.0},
            "prompt_tokens": {"kind": "uniform", "min": 100, "max": 800},
            "output_tokens": {"kind": "uniform", "min": 10, "max": 120},
        }
    },
    "slo": {"ttft_s": 0.5, "tpot_s": 0.05},
}


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, Any], Path]:
    def write(name: str, data: Any) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def base_scenario(write_yaml) -> Path:
    return write_yaml("base.yaml", BASE)
