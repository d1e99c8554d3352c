"""Fixtures for validation tests: the shared real benchmark outputs (skipped when absent)
and small hand-written `vllm bench serve --save-detailed` results (FORMATS.md §1.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FORMATS_DIR = SHARED_DATA / "formats"
TINY_LLAMA = SHARED_DATA.parent / "live" / "tiny-llama" / "config.json"


@pytest.fixture
def formats_dir() -> Path:
    if not FORMATS_DIR.is_dir():
        pytest.skip(f"real benchmark fixtures not available ({FORMATS_DIR} is absent)")
    return FORMATS_DIR


def detailed_vllm(
    num: int = 6, *, failed: tuple[int, ...] = (), model: str = "meta-llama/Llama-3.1-8B"
) -> dict:
    """A `vllm bench serve --save-result --save-detailed` result: arrays in seconds,
    aggregates in ms. Requests start every 0.5 s on a perf_counter clock at 1000 s, listed
    in reverse start order (as --max-concurrency can produce); 4 output tokens each."""
    starts = [1000.0 + 0.5 * i for i in reversed(range(num))]
    ttfts = [0.05 + 0.01 * i for i in range(num)]
    itls = [[0.02, 0.02, 0.03] for _ in range(num)]
    latencies = [t + sum(g) for t, g in zip(ttfts, itls, strict=True)]
    errors = ["" for _ in range(num)]
    output_lens = [4] * num
    for i in failed:
        ttfts[i], latencies[i], itls[i], output_lens[i] = 0.0, 0.0, [], 0
        errors[i] = "ClientConnectorError"
    return {
        "date": "20261123-120000", "endpoint_type": "vllm", "backend": "vllm", "label": None,
        "model_id": model, "tokenizer_id": model, "num_prompts": num, "request_rate": 2.0,
        "burstiness": 1.0, "max_concurrency": None, "duration": 3.0,
        "completed": num - len(failed), "failed": len(failed),
        "total_input_tokens": 32 * num, "total_output_tokens": sum(output_lens),
        "request_throughput": 2.0, "request_goodput": None, "output_throughput": 7.5,
        "input_lens": [32] * num, "output_lens": output_lens, "ttfts": ttfts, "itls": itls,
        "start_times": starts, "latencies": latencies, "errors": errors,
        "mean_ttft_ms": 999.0, "median_ttft_ms": 999.0, "p99_ttft_ms": 999.0,
    }  # fmt: skip


@pytest.fixture
def make_vllm():
    return detailed_vllm


@pytest.fixture
def write_json(tmp_path: Path):
    def write(data: dict, name: str = "result.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    return write


SCENARIO = """\
name: validate-tiny
seed: 3
model: {model}
workload:
  synthetic:
    num_requests: 4
    arrival: {{kind: poisson, rate_per_s: 2.0}}
    prompt_tokens: {{kind: fixed, value: 32}}
    output_tokens: {{kind: fixed, value: 4}}
hardware:
  gpu: h100-sxm
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    """llama-3.1-8b on one H100 (roofline), 4 synthetic requests (replays replace them)."""
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.format(model="llama-3.1-8b"))
    return path
