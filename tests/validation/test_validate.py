"""Replay end to end: a hand-written detailed vLLM result through llama-3.1-8b on one H100,
through the library API and the CLI (click's CliRunner)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.scenario.load import load_scenario
from infsim.validation import validate
from infsim.validation.measured import STAT_KEYS
from infsim.validation.replay import model_candidates


def _cli(*args: str):
    return CliRunner().invoke(main, ["validate", *args])


def test_replay_compares_every_stat_with_signed_error(make_vllm, write_json, scenario_file):
    # 6 requests, the 3rd (index 2) failed: 5 are replayed, their rows are measured.
    bench = write_json(make_vllm(6, failed=(2,)))
    result = _cli(str(bench), "--scenario", str(scenario_file), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"metrics", "median_abs_error_pct", "run"}
    assert list(out["metrics"]) == list(STAT_KEYS)
    for item in out["metrics"].values():
        assert set(item) == {"measured", "predicted", "error_pct"}
        expected = (item["predicted"] - item["measured"]) / item["measured"] * 100
        assert item["error_pct"] == pytest.approx(expected)
    errors = [abs(m["error_pct"]) for m in out["metrics"].values()]
    assert out["median_abs_error_pct"] == pytest.approx(float(np.median(errors)))
    # measured from the successful rows, not from the (deliberately wrong) 999 ms aggregates
    ttfts = [0.05 + 0.01 * i for i in (0, 1, 3, 4, 5)]
    assert out["metrics"]["ttft_mean"]["measured"] == pytest.approx(np.mean(ttfts))
    assert out["metrics"]["ttft_p99"]["measured"] == pytest.approx(np.percentile(ttfts, 99))
    assert out["metrics"]["tpot_mean"]["measured"] == pytest.approx(0.07 / 3)
    assert out["metrics"]["itl_p50"]["measured"] == pytest.approx(0.02)
    run = out["run"]
    assert run["replayed"] is True
    assert (run["num_requests_simulated"], run["num_requests_recorded"]) == (5, 6)
    assert run["num_finished_predicted"] == 5
    assert any("1 of 6 benchmark requests failed" in note for note in run["notes"])


def test_table_output_names_the_median_error(make_vllm, write_json, scenario_file):
    result = _cli(str(write_json(make_vllm(4))), "--scenario", str(scenario_file))
    assert result.exit_code == 0, result.output
    assert "median absolute error" in result.output
    assert "ttft (ms)" in result.output


def test_library_api_accepts_a_scenario_path(make_vllm, write_json, scenario_file):
    result = validate(write_json(make_vllm(4)), scenario_file)
    assert result.run["num_requests_simulated"] == 4
    assert result.to_json()["metrics"]["output_tokens_per_s"]["predicted"] > 0


def test_model_mismatch_exits_2_with_how_to_override(make_vllm, write_json, scenario_file):
    bench = write_json(make_vllm(4, model="Qwen/Qwen3-8B"))
    result = _cli(str(bench), "--scenario", str(scenario_file))
    assert result.exit_code == 2
    assert "measured model 'Qwen/Qwen3-8B'" in result.output
    assert "--set model=" in result.output
    assert "--allow-model-mismatch" in result.output
    forced = _cli(str(bench), "--scenario", str(scenario_file), "--allow-model-mismatch")
    assert forced.exit_code == 0, forced.output
    switched = _cli(str(bench), "--scenario", str(scenario_file), "--set", "model=qwen3-8b")
    assert switched.exit_code == 0, switched.output


@pytest.mark.parametrize(
    ("bench_model", "scenario_model", "simulated"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", "Llama-3.1-8B"),  # catalog alias
        ("../shared/live/tiny-llama", "../../shared/live/tiny-llama/config.json", "tiny-llama"),
        ("/data/tiny-llama/", "/elsewhere/tiny-llama", "tiny-llama"),
    ],
)
def test_model_names_that_match(bench_model, scenario_model, simulated):
    from infsim.validation.measured import MeasuredRun
    from infsim.validation.replay import check_model

    run = MeasuredRun("vllm", "b.json", bench_model, None)
    assert check_model(run, scenario_model, simulated) is None


def test_hf_cache_paths_name_their_model():
    path = "/models/models--openai--gpt-oss-120b/snapshots/b5c9/"
    assert "openai/gpt-oss-120b" in model_candidates(path)


def test_max_requests_above_recorded_exits_2(make_vllm, write_json, scenario_file):
    bench = write_json(make_vllm(4))
    result = _cli(str(bench), "--scenario", str(scenario_file),
                  "--set", "workload.max_requests=10")  # fmt: skip
    assert result.exit_code == 2
    assert "max_requests is 10 but the benchmark" in result.output
    assert "recorded only 4 successful requests" in result.output


def test_max_requests_below_recorded_replays_the_first(make_vllm, write_json, scenario_file):
    spec = load_scenario(scenario_file, ["workload.max_requests=2"])
    result = validate(write_json(make_vllm(4)), spec, scenario_file.parent)
    assert result.run["num_requests_simulated"] == 2
    # the first two by start time are the last two rows (ttft 0.08, 0.07)
    assert result.metrics["ttft_mean"].measured == pytest.approx(0.075)


def test_no_successful_requests_exits_2(make_vllm, write_json, scenario_file):
    bench = write_json(make_vllm(3, failed=(0, 1, 2)))
    result = _cli(str(bench), "--scenario", str(scenario_file))
    assert result.exit_code == 2
    assert "no successful requests" in result.output


def test_scaling_the_recorded_arrivals_is_refused(make_vllm, write_json, scenario_file):
    spec = load_scenario(scenario_file, ["workload.rate_scale=2"])
    with pytest.raises(InputError, match=r"workload\.rate_scale"):
        validate(write_json(make_vllm(3)), spec, scenario_file.parent)


def test_aggregates_only_uses_the_scenario_workload_and_says_so(
    make_vllm, write_json, scenario_file
):
    data = make_vllm(6)
    for key in ("start_times", "input_lens", "output_lens", "ttfts", "itls", "errors"):
        del data[key]
    result = validate(write_json(data), scenario_file)
    assert result.run["replayed"] is False
    assert any(note.startswith("NOT REPLAYED") for note in result.run["notes"])
    # only what the file states: ttft mean/p50/p99 (999 ms) and output throughput
    assert list(result.metrics) == ["ttft_mean", "ttft_p50", "ttft_p99", "output_tokens_per_s"]
    assert result.metrics["ttft_p50"].measured == pytest.approx(0.999)
    assert result.run["num_requests_simulated"] == 4


def test_aggregates_only_refuses_more_requests_than_recorded(make_vllm, write_json, scenario_file):
    data = make_vllm(2)
    del data["start_times"]
    with pytest.raises(InputError, match=r"has 4 requests but the benchmark .* recorded only 2"):
        validate(write_json(data), scenario_file)


def test_closed_loop_benchmark_replays_as_a_closed_loop(make_vllm, write_json, scenario_file):
    # --max-concurrency 2 with rate inf: all requests are ready at once and each is sent
    # when a slot frees, so the replay ignores the recorded (outcome) start times.
    data = make_vllm(6) | {"request_rate": "inf", "max_concurrency": 2}
    result = validate(write_json(data), scenario_file)
    assert any("closed loop: at most 2 requests in flight" in n for n in result.run["notes"])
    open_loop = validate(write_json(make_vllm(6), "open.json"), scenario_file)
    assert not any("closed loop" in n for n in open_loop.run["notes"])
    # Six equal requests, two at a time, back to back: the predicted E2E of every request
    # is about the same (the second of a pair waits for the first at the API server).
    assert result.to_json()["metrics"]["e2e_p99"]["predicted"] == pytest.approx(
        result.to_json()["metrics"]["e2e_p50"]["predicted"], rel=0.1
    )


def test_closed_loop_with_a_rate_keeps_recorded_starts_as_earliest(
    make_vllm, write_json, scenario_file
):
    data = make_vllm(4) | {"request_rate": 2.0, "max_concurrency": 1}
    result = validate(write_json(data), scenario_file)
    assert any("earliest send times" in n for n in result.run["notes"])


def test_closed_loop_limit_contradicting_the_scenario_exits_2(make_vllm, write_json, scenario_file):
    data = make_vllm(4) | {"request_rate": "inf", "max_concurrency": 2}
    bench = write_json(data)
    out = CliRunner().invoke(
        main,
        ["validate", str(bench), "--scenario", str(scenario_file), "--set",
         "workload.max_concurrency=3"],
    )  # fmt: skip
    assert out.exit_code == 2
    assert "max_concurrency" in out.output
    assert "in flight" in out.output
