"""Loaders on the real staged files; counts and values from their READMEs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from infsim.errors import InputError
from infsim.workload.loaders import detect_format, load_trace


def test_azure_conv_matches_readme(shared_data):
    path = shared_data / "traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv"
    trace = load_trace(path)
    assert trace.num_requests == 19_366
    assert trace.arrival_s[0] == 0.0
    # 18:15:46.6805900 → 18:15:50.9951690 (first two rows), README span 3,502 s.
    assert trace.arrival_s[1] == pytest.approx(4.314579, abs=1e-6)
    assert trace.duration_s == pytest.approx(3501.721937, abs=1e-6)
    assert trace.num_prompt_tokens[:2].tolist() == [374, 396]
    assert trace.num_output_tokens[:2].tolist() == [44, 109]
    assert round(trace.num_prompt_tokens.mean()) == 1155
    assert round(trace.num_output_tokens.mean()) == 211
    assert trace.hash_block_size_tokens is None
    assert trace.notes == ()  # no 0-token rows in the public file: nothing dropped


def test_azure_code_matches_readme(shared_data):
    trace = load_trace(shared_data / "traces/azure_llm_2023/AzureLLMInferenceTrace_code.csv")
    assert trace.num_requests == 8_819
    assert round(trace.duration_s) == 3436
    assert round(trace.num_prompt_tokens.mean()) == 2048
    assert np.percentile(trace.num_output_tokens, 50) == 13


def test_mooncake_conversation_matches_readme(shared_data):
    path = shared_data / "traces/mooncake_fast25/conversation_trace.jsonl"
    start = time.perf_counter()
    trace = load_trace(path)
    elapsed_s = time.perf_counter() - start
    assert elapsed_s < 1.0, f"loading 12k Mooncake rows took {elapsed_s:.2f} s"
    summary = trace.summary()
    assert trace.num_requests == 12_031
    assert trace.duration_s == pytest.approx(3536.999)
    assert summary["num_total_blocks"] == 288_500
    assert summary["num_unique_blocks"] == 182_790
    assert trace.hash_block_size_tokens == 512
    first = trace.table.slice(0, 1).to_pylist()[0]
    assert first["num_prompt_tokens"] == 6758
    assert first["num_output_tokens"] == 500
    assert first["prefix_hash_ids"] == list(range(14))


def test_mooncake_synthetic_matches_readme(shared_data):
    trace = load_trace(shared_data / "traces/mooncake_fast25/synthetic_trace.jsonl", "mooncake")
    summary = trace.summary()
    assert trace.num_requests == 3_993
    assert trace.duration_s == pytest.approx(1022.025)
    assert (summary["num_total_blocks"], summary["num_unique_blocks"]) == (121_877, 43_924)


@pytest.mark.parametrize(
    ("model", "num_blocks", "num_repeats", "input_mean"),
    [("llama-3.1-8b", 15_942, 1_220, 857), ("qwen3-30b-a3b", 16_034, 1_278, 862)],
)
def test_llmservingsim_sharegpt_matches_readme(
    shared_data, model, num_blocks, num_repeats, input_mean
):
    folder = shared_data / "traces/llmservingsim_sharegpt_workloads"
    path = folder / f"sharegpt-{model}-300-sps10.tokens_hashed.jsonl"
    assert detect_format(path) == "llmservingsim"
    trace = load_trace(path)
    summary = trace.summary()
    assert trace.num_requests == 300
    assert trace.hash_block_size_tokens == 16
    assert summary["num_total_blocks"] == num_blocks
    assert summary["num_total_blocks"] - summary["num_unique_blocks"] == num_repeats
    assert round(trace.num_prompt_tokens.mean()) == input_mean
    assert trace.arrival_s[0] == pytest.approx(0.046926808)
    assert summary["span_s"] == pytest.approx(29.1, abs=0.1)


def test_vllm_bench_without_start_times_is_rejected(shared_data):
    """The staged InferenceX files were saved without --save-detailed: no per-request data."""
    folder = shared_data / "formats/vllm_bench_serve"
    for path in sorted(folder.glob("*.json")):
        assert detect_format(path) == "vllm-bench"
        with pytest.raises(InputError, match=r"start_times.*--save-detailed") as info:
            load_trace(path)
        assert str(path) in str(info.value)
