"""Vidur's processed traces as a trace format, and the burstiness figures of `trace info`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infsim.errors import InputError
from infsim.workload.loaders import load_trace
from infsim.workload.stats import burstiness

SHARED = Path(__file__).resolve().parents[3] / "shared/data/traces/vidur_processed_traces"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_vidur_csv_is_read_and_detected(tmp_path: Path) -> None:
    path = _write(tmp_path, "arrived_at,num_prefill_tokens,num_decode_tokens\n"
                            "0.0,100,10\n0.5,200,20\n1.25,300,30\n")  # fmt: skip
    for fmt in ("vidur", "auto"):
        trace = load_trace(path, fmt)
        assert trace.arrival_s.tolist() == [0.0, 0.5, 1.25]
        assert trace.num_prompt_tokens.tolist() == [100, 200, 300]
        assert trace.num_output_tokens.tolist() == [10, 20, 30]


def test_vidur_lengths_only_file_and_zero_decode_tokens_are_refused(tmp_path: Path) -> None:
    lengths = _write(tmp_path, "num_prefill_tokens,num_decode_tokens,num_total_tokens\n5,6,11\n")
    with pytest.raises(InputError, match="no arrival times to replay"):
        load_trace(lengths, "vidur")
    zero = _write(tmp_path, "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,0\n1,5,3\n")
    with pytest.raises(InputError, match=r"line 2.*num_decode_tokens is 0"):
        load_trace(zero, "vidur")
    assert load_trace(zero, "vidur", drop_zero_output=True).num_requests == 1


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/traces (Vidur traces) absent")
def test_vidur_splitwise_conv_is_the_azure_conversation_trace() -> None:
    # The shared folder's README: splitwise_conv.csv is Azure 2023 conv re-based to seconds.
    vidur = load_trace(SHARED / "splitwise_conv.csv")
    azure = load_trace(SHARED.parent / "azure_llm_2023/AzureLLMInferenceTrace_conv.csv")
    assert vidur.num_requests == azure.num_requests == 19_366
    assert np.array_equal(vidur.num_prompt_tokens, azure.num_prompt_tokens)
    assert np.allclose(vidur.arrival_s, azure.arrival_s, atol=1e-3)  # ms-rounded in Vidur's


def test_burstiness_of_even_poisson_and_bursty_arrivals() -> None:
    even = burstiness(np.arange(0.0, 100.0, 0.5))  # 2 req/s exactly
    assert even["interarrival_cv"] == pytest.approx(0.0, abs=1e-12)
    assert even["peak_rate_per_s_10s"] == pytest.approx(2.0)
    assert even["peak_to_mean_10s"] == pytest.approx(2.0 / (200 / 99.5))
    rng = np.random.default_rng(0)
    poisson = burstiness(np.cumsum(rng.exponential(1.0, 20_000)))
    assert poisson["interarrival_cv"] == pytest.approx(1.0, abs=0.03)
    burst = np.concatenate([np.arange(0.0, 50.0, 1.0), 50.0 + np.arange(40) * 0.01])
    b = burstiness(np.concatenate([burst, np.arange(51.0, 100.0, 1.0)]))
    assert b["peak_rate_per_s_1s"] == pytest.approx(40.0)  # 50.00 … 50.39 in [50, 51)
    assert b["peak_to_mean_1s"] > 20
    short = burstiness(np.array([0.0, 0.1]))
    assert short["interarrival_cv"] is None
    assert short["peak_rate_per_s_60s"] is None
