"""Each benchmark parser on the real staged outputs (exact values from the files) and on
hand-written detailed vLLM results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infsim.errors import InputError
from infsim.validation.formats import detect_format, load_measured


def test_vllm_legacy_aggregates_in_ms_become_seconds(formats_dir):
    path = formats_dir / "vllm_bench_serve" / "inferencex_gpt-oss-120b_conc64_save-result.json"
    run = load_measured(path)
    assert run.format == "vllm"
    assert run.model.startswith("/models/models--openai--gpt-oss-120b/")
    assert run.num_completed == 640
    assert run.duration_s == pytest.approx(131.00373828504235)
    assert run.stats["ttft_mean"] == pytest.approx(0.23625605633751547)
    assert run.stats["ttft_p50"] == pytest.approx(0.17669113306328654)  # median_ttft_ms
    assert run.stats["e2e_p99"] == pytest.approx(13.560334076725412)  # p99_e2el_ms
    assert run.stats["output_tokens_per_s"] == pytest.approx(5002.605334620647)
    # the legacy script's typo key is accepted and said; no arrays -> cannot replay
    assert any("request_goodput:" in note for note in run.notes)
    assert run.requests is None
    assert not run.replayable
    assert "aggregates" in run.why_not_replayable()


def test_vllm_detailed_rows_are_seconds_and_errors_fail(make_vllm, write_json):
    run = load_measured(write_json(make_vllm(6, failed=(2,))))
    rows = run.requests
    assert run.replayable
    assert rows.num_requests == 6
    assert rows.start_s[0] == 1002.5
    assert rows.ttft_s[1] == pytest.approx(0.06)
    assert rows.itl_s[0].tolist() == [0.02, 0.02, 0.03]
    assert rows.failed.tolist() == [False, False, True, False, False, False]
    assert run.num_failed == 1


def test_vllm_without_start_times_is_not_replayable(make_vllm, write_json):
    data = make_vllm(3)
    del data["start_times"]
    run = load_measured(write_json(data))
    assert run.requests is not None
    assert not run.replayable
    assert any("PR #32667" in note for note in run.notes)


def test_vllm_append_result_needs_run_index(make_vllm, tmp_path):
    path = tmp_path / "appended.json"
    path.write_text(json.dumps(make_vllm(2)) + "\n" + json.dumps(make_vllm(3)) + "\n")
    with pytest.raises(InputError, match="holds 2 benchmark runs; choose one with --run"):
        load_measured(path, "vllm")
    assert load_measured(path, "vllm", run_index=1).requests.num_requests == 3


def test_sglang_jsonl_runs_and_infinity(formats_dir):
    online = formats_dir / "sglang" / "h200_llama-3.3-70b_online_bench_serving.jsonl"
    with pytest.raises(InputError, match="--run N"):
        load_measured(online)
    run = load_measured(online, run_index=0)
    assert (run.format, run.num_completed, run.model) == ("sglang", 300, None)
    assert run.stats["ttft_p50"] == pytest.approx(0.08574514742940664)
    assert run.stats["e2e_mean"] == pytest.approx(7.840616212638561)
    assert run.stats["itl_p50"] == pytest.approx(0.013638956006616354)
    assert run.stats["output_tokens_per_s"] == pytest.approx(537.4142851849319)
    assert not run.replayable
    assert "start times" in run.why_not_replayable()
    offline = formats_dir / "sglang" / "h200_llama-3.3-70b_offline_bench_serving.jsonl"
    assert load_measured(offline, run_index=0).num_completed == 3000  # file has Infinity


def test_aiperf_records_explicit_units(formats_dir):
    run = load_measured(formats_dir / "aiperf" / "run1_profile_export.jsonl")
    rows = run.requests
    assert run.format == "aiperf"
    assert run.model == "openai/gpt-oss-20b"
    assert (rows.num_requests, run.num_completed, run.num_failed) == (100, 89, 11)
    assert run.replayable
    ok = np.flatnonzero(~rows.failed)
    first = ok[0]  # line 12 of the file: ttft 1680.543782 ms, latency 7936.968269 ms
    assert rows.ttft_s[first] == pytest.approx(1.680543782)
    assert rows.e2e_s[first] == pytest.approx(7.936968269)
    assert rows.num_input_tokens[first] == 550
    assert rows.num_output_tokens[first] == 193
    assert len(rows.itl_s[first]) == 192
    assert rows.start_s[first] == pytest.approx(1759522419.159192408)  # timestamp_ns
    assert rows.num_output_tokens[ok].sum() == 21624  # total_osl in the aggregate export


def test_aiperf_aggregate_export(formats_dir):
    run = load_measured(formats_dir / "aiperf" / "run1_profile_export_aiperf.json")
    assert run.requests is None
    assert (run.num_completed, run.num_failed) == (89, 11)
    assert run.stats["ttft_mean"] == pytest.approx(2.343219436988764)
    assert run.stats["itl_p99"] == pytest.approx(0.14053429476)
    assert run.duration_s == pytest.approx(9.317788951)


def test_guidellm_report(formats_dir):
    run = load_measured(formats_dir / "guidellm" / "benchmarks_stripped_v0.3.json")
    assert (run.format, run.model, run.num_completed, run.num_failed) == (
        "guidellm", "example_model", 46, 1,
    )  # fmt: skip
    assert run.stats["ttft_mean"] == pytest.approx(0.016792535781860348)
    assert run.stats["ttft_p50"] == pytest.approx(0.01638054847717285)  # median
    assert run.stats["tpot_mean"] == pytest.approx(0.004941609043733832)  # inter_token_latency
    assert run.stats["e2e_mean"] == pytest.approx(0.6444743664368339)  # seconds already
    assert run.stats["output_tokens_per_s"] == pytest.approx(5888.0 / 29.997201442718506)
    assert "itl_mean" not in run.stats
    assert not run.replayable
    assert "1 of 46" in run.why_not_replayable()


def test_llmperf_individual_responses(formats_dir):
    run = load_measured(formats_dir / "llmperf" / "groq_70b_individual_responses.json")
    rows = run.requests
    assert (run.format, rows.num_requests, run.num_failed) == ("llmperf", 150, 0)
    assert rows.ttft_s[0] == pytest.approx(0.297977801412344)
    assert rows.e2e_s[0] == pytest.approx(0.8900090400129557)
    assert (rows.num_input_tokens[0], rows.num_output_tokens[0]) == (550, 150)
    assert rows.itl_s is None
    assert not run.replayable
    assert run.model == "llama2-70b-4096"  # from the sibling groq_70b_summary.json
    assert run.stats == {"output_tokens_per_s": pytest.approx(441.84737788500206)}


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("vllm_bench_serve/inferencex_minimax-m2.5_conc512_save-result.json", "vllm"),
        ("sglang/h200_llama-3.1-405b_online_bench_serving.jsonl", "sglang"),
        ("aiperf/run1_profile_export.jsonl", "aiperf"),
        ("aiperf/run1_profile_export_aiperf.json", "aiperf"),
        ("guidellm/benchmarks_stripped_v0.3.json", "guidellm"),
        ("llmperf/groq_70b_individual_responses.json", "llmperf"),
    ],
)
def test_auto_detection(formats_dir, relative, expected):
    assert detect_format(formats_dir / relative) == expected


def test_unknown_file_is_an_input_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="cannot tell which benchmark"):
        load_measured(path)
