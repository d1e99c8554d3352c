"""Shared fixture for the calibrate-refit tests (overhead, frontend)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def rtx4090_setup(tmp_path: Path) -> tuple[Path, Path]:
    """(calibration dir, scenario file): a private copy of rtx4090-vllm-0.19 (the tests
    rewrite it) and llama-3.1-8b on an RTX 4090 that names it."""
    cal = tmp_path / "cal"
    shutil.copytree(REPO / "calibration" / "rtx4090-vllm-0.19", cal)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "model": "llama-3.1-8b", "hardware": {"gpu": "rtx-4090"}, "calibration": str(cal),
        "engine": {"max_num_seqs": 64, "max_num_batched_tokens": 2048, "max_model_len": 8192},
        "workload": {"synthetic": {"num_requests": 5, "arrival": {"kind": "poisson",
                     "rate_per_s": 1}, "prompt_tokens": {"kind": "fixed", "value": 100},
                     "output_tokens": {"kind": "fixed", "value": 5}}},
    }))  # fmt: skip
    return cal, scenario
