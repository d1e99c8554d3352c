"""Regression tests of issue 15 for benchmark files: each family of bad input that ended
in a traceback (or a numpy warning, or silent acceptance) now ends in one `InputError`
naming the file, the record and the field (with the request index), what is wrong and
what is allowed; `infsim validate` prints it and exits 2."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.validation import validate
from infsim.validation.formats import load_measured
from infsim.validation.measured import MeasuredRun
from infsim.validation.replay import check_model


def vllm(**changes: Any) -> dict[str, Any]:
    """A 3-request `vllm bench serve --save-detailed` result with `changes` applied."""
    run = {
        "model_id": "meta-llama/Llama-3.1-8B", "request_rate": 2.0, "max_concurrency": None,
        "duration": 2.0, "completed": 3, "failed": 0, "output_throughput": 4.5,
        "input_lens": [32, 32, 32], "output_lens": [4, 4, 4], "ttfts": [0.05, 0.06, 0.07],
        "itls": [[0.02, 0.02, 0.03]] * 3, "start_times": [1000.0, 1000.5, 1001.0],
        "latencies": [0.12, 0.13, 0.14], "errors": ["", "", ""], "mean_ttft_ms": 60.0,
    }  # fmt: skip
    run.update(changes)
    return run


def write(tmp_path: Path, content: Any, name: str = "result.json") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def refused(path: Path, fmt: str = "auto", run_index: int | None = None) -> str:
    """The message of the InputError `load_measured` raises (no warning may leak)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(InputError) as err:
            load_measured(path, fmt, run_index)
    message = str(err.value)
    assert message.startswith(str(path.parent)), message
    assert "\n" not in message
    return message


# -- vLLM arrays holding lists, strings or nulls, or not arrays -----------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ttfts": [0.05, [0.06], 0.07]}, "ttfts[1] is [0.06]; expected a number of seconds"),
        ({"input_lens": ["32", 32, 32]}, "input_lens[0] is '32'; expected a token count"),
        ({"output_lens": [4, 4, None]}, "output_lens[2] is None; expected a token count"),
        ({"output_lens": [4, 4.5, 4]}, "output_lens[1] is 4.5; expected a token count"),
        ({"output_lens": [4, True, 4]}, "output_lens[1] is True; expected a token count"),
        ({"input_lens": 7}, "input_lens is 7; expected a JSON array"),
        ({"itls": 5}, "itls is 5; expected a JSON array of 3 items"),
        ({"itls": [[0.1], "x", []]}, "itls[1] is 'x'; expected a JSON array"),
        ({"errors": [1, "", ""]}, "errors[0] is 1; expected a string (or null)"),
        ({"latencies": {"0": 0.1}}, "latencies is {'0': 0.1}; expected a JSON array"),
        ({"ttfts": [0.05, 0.06]}, "ttfts holds 2 items but there are 3 requests"),
        ({"start_times": [1000.0, "soon", 1001.0]}, "start_times[1] is 'soon'"),
    ],
)
def test_vllm_arrays_of_the_wrong_kind(tmp_path, changes, expected):
    message = refused(write(tmp_path, vllm(**changes)))
    assert f"result.json: {expected}" in message


def test_null_itls_are_refused_by_validate(tmp_path, scenario_file):
    """Was: ValueError 'zero-dimensional arrays cannot be concatenated' in compare.py."""
    path = write(tmp_path, vllm(itls=[None, [0.02], [0.03]]))
    with pytest.raises(InputError, match=r"result\.json: itls\[0\] is None; expected a JSON"):
        validate(path, scenario_file)


# -- model ids, dict-valued metrics, missing token counts ------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model_id": 123}, "model_id is 123; expected a string"),
        ({"model_id": ["a"]}, "model_id is ['a']; expected a string"),
        ({"mean_ttft_ms": {"value": 1}}, "mean_ttft_ms is {'value': 1}; expected a number"),
        ({"p99_e2el_ms": "12"}, "p99_e2el_ms is '12'; expected a number"),
        ({"output_throughput": []}, "output_throughput is []; expected a finite number"),
        ({"completed": {}}, "completed is {}; expected an integer"),
        ({"failed": "0"}, "failed is '0'; expected an integer"),
        ({"duration": [2.0]}, "duration is [2.0]; expected a number of seconds"),
        ({"request_rate": {}}, "request_rate is {}; expected a positive number"),
        ({"max_concurrency": 10**20}, "max_concurrency is 100000000000000000000"),
    ],
)
def test_vllm_scalars_of_the_wrong_kind(tmp_path, changes, expected):
    assert expected in refused(write(tmp_path, vllm(**changes)))


def test_numeric_model_id_is_refused_by_the_cli(tmp_path, scenario_file):
    """Was: AttributeError 'int' object has no attribute 'strip' in replay.py (exit 1)."""
    path = write(tmp_path, vllm(model_id=123, tokenizer_id=123))
    result = CliRunner().invoke(main, ["validate", str(path), "--scenario", str(scenario_file)])
    assert result.exit_code == 2, result.output
    assert "model_id is 123; expected a string" in result.output


def test_a_model_name_that_is_no_path_is_not_an_os_error():
    """Was: OSError 'File name too long' while probing the catalog for the name."""
    run = MeasuredRun("vllm", "b.json", "m" * 5000, None)
    with pytest.raises(InputError, match="the benchmark measured model 'mmm"):
        check_model(run, "llama-3.1-8b", "llama-3.1-8b")


def test_missing_token_counts(tmp_path):
    data = vllm()
    del data["input_lens"]
    assert "per-request arrays output_lens, ttfts, itls, errors without input_lens" in refused(
        write(tmp_path, data)
    )
    llmperf = [{"error_code": None, "error_msg": "", "ttft_s": 0.3,
                "end_to_end_latency_s": 0.9, "number_input_tokens": 550}]  # fmt: skip
    message = refused(write(tmp_path, llmperf, "x_individual_responses.json"))
    assert "response 0: number_output_tokens is None; expected a token count" in message
    report = {"benchmarks": [{"type_": "generative_benchmark",
        "request_totals": {"successful": 1, "errored": 0, "incomplete": 0},
        "requests": {"successful": [{"output_tokens": 3, "start_time": 1.0, "end_time": 2.0,
                                     "time_to_first_token_ms": 20.0}]}}]}  # fmt: skip
    message = refused(write(tmp_path, report, "guidellm.json"), "guidellm")
    assert "benchmarks[0]: requests.successful[0]: prompt_tokens is None" in message


def aiperf(**metrics: Any) -> str:
    base = {"ttft": {"value": 10.0, "unit": "ms"}, "request_latency": {"value": 50.0, "unit": "ms"},
            "input_sequence_length": {"value": 8, "unit": "tokens"},
            "output_sequence_length": {"value": 4, "unit": "tokens"}}  # fmt: skip
    base.update(metrics)
    record = {"metadata": {"timestamp_ns": 1759522419154829652}, "metrics": base, "error": None}
    return json.dumps(record) + "\n"


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"ttft": {"value": {"a": 1}, "unit": "ms"}}, "metrics.ttft.value is {'a': 1}"),
        ({"ttft": [1.0]}, "metrics.ttft is [1.0]; expected a JSON object"),
        ({"ttft": {"value": 1.0, "unit": ["ms"]}}, "metrics.ttft.unit: unknown time unit ['ms']"),
        ({"inter_chunk_latency": {"value": [1, [2]], "unit": "ms"}},
         "metrics.inter_chunk_latency.value[1] is [2]"),
        ({"output_sequence_length": None}, "error is null but metrics lack output_sequence_length"),
        ({"input_sequence_length": {"value": 1e30, "unit": "tokens"}},
         "metrics.input_sequence_length.value is 1e+30; expected a token count"),
        ({"request_latency": {"value": float("inf"), "unit": "ms"}},
         "metrics.request_latency.value is inf; expected a number of seconds"),
    ],
)  # fmt: skip
def test_aiperf_metric_values(tmp_path, metrics, expected):
    message = refused(write(tmp_path, aiperf(**metrics), "profile_export.jsonl"))
    assert f"profile_export.jsonl: line 1: {expected}" in message


# -- bytes: not UTF-8, nested 1,000 deep, integers of 5,000 digits ---------------------------


@pytest.mark.parametrize("name", ["result.json", "sglang.jsonl", "profile_export.jsonl"])
def test_files_that_are_not_utf8(tmp_path, name):
    text = json.dumps(vllm(model_id="Llama-\xe9"), ensure_ascii=False).encode("latin-1")
    message = refused(write(tmp_path, text, name), "vllm" if name == "result.json" else "auto")
    assert "line 1: the benchmark result file is not UTF-8 text (byte 0xe9" in message


def test_utf16_file(tmp_path):
    message = refused(write(tmp_path, json.dumps(vllm()).encode("utf-16"), "r.json"), "vllm")
    assert "is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8" in message


@pytest.mark.parametrize(("fmt", "lines"), [("vllm", False), ("sglang", True), ("vllm", True)])
def test_json_nested_1000_deep(tmp_path, fmt, lines):
    deep = "[" * 1000 + "]" * 1000
    text = json.dumps(vllm(ttfts="@")).replace('"@"', deep)
    if lines:
        text = json.dumps(vllm()) + "\n" + text + "\n"
    message = refused(write(tmp_path, text, "r.jsonl"), fmt, 1 if lines else None)
    assert "nested 1001 levels deep; at most 64 levels are accepted" in message


@pytest.mark.parametrize("lines", [False, True])
def test_integers_over_4300_digits(tmp_path, lines):
    text = json.dumps(vllm(completed="@")).replace('"@"', "9" * 5000)
    path = write(tmp_path, text + "\n" + text if lines else text, "r.json")
    message = refused(path, "vllm", 0 if lines else None)
    assert "unreadable value: Exceeds the limit (4300 digits)" in message


def test_deep_first_line_does_not_break_auto_detection(tmp_path):
    """Was: RecursionError in the vllm-inprocess sniffer's json.loads."""
    text = '{"metrics": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    assert "cannot tell which benchmark wrote this file" in refused(write(tmp_path, text, "x"))


# -- non-finite and out-of-range numbers: which field, which request --------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ttfts": [0.05, 0.06, float("nan")]}, "ttfts[2] is nan; expected a number of seconds"),
        ({"latencies": [float("inf")] * 3}, "latencies[0] is inf; expected a number of seconds"),
        ({"start_times": [1000.0, float("-inf"), 1.0]}, "start_times[1] is -inf; expected a"),
        ({"itls": [[0.02], [0.01, float("nan")], []]}, "itls[1][1] is nan; expected a number"),
        ({"output_lens": [4, float("nan"), 4]}, "output_lens[1] is nan; expected a token count"),
        ({"output_lens": [4, 10**19, 4]}, "output_lens[1] is 10000000000000000000; expected"),
        ({"input_lens": [10**400, 1, 1]}, "input_lens[0] is 1000"),
        ({"ttfts": [-0.5, 0.06, 0.07]}, "ttfts[0] is -0.5; expected a number of seconds"),
        ({"ttfts": [1e300, 0.06, 0.07]}, "ttfts[0] is 1e+300; expected a number of seconds"),
        ({"mean_ttft_ms": float("inf")}, "mean_ttft_ms is inf; expected a number of seconds"),
    ],
)
def test_non_finite_numbers_name_the_field_and_request(tmp_path, changes, expected):
    message = refused(write(tmp_path, vllm(**changes)))
    assert f"result.json: {expected}" in message


def test_nan_aggregates_mean_not_stated(tmp_path):
    """vLLM writes NaN for an aggregate it could not compute: not stated, not an error."""
    run = load_measured(write(tmp_path, vllm(mean_ttft_ms=float("nan"), p99_tpot_ms=None)))
    assert "ttft_mean" not in run.stats


def test_inprocess_token_counts_beyond_int64(tmp_path):
    """Was: OverflowError 'Python int too large to convert to C long'."""
    row = {"request_id": "0", "num_prompt_tokens": 10**30, "num_output_tokens": 4,
           "metrics": {"arrival_time": 1.0, "first_token_time": 1.1, "last_token_time": 1.2,
                       "finished_time": 1.3}}  # fmt: skip
    message = refused(write(tmp_path, json.dumps(row) + "\n", "run.jsonl"), "vllm-inprocess")
    assert "line 1: num_prompt_tokens is 1000000000000000000000000000000; at most" in message


def test_every_family_exits_2_through_the_cli(tmp_path, scenario_file):
    cases = [
        vllm(itls=[None, None, None]),
        vllm(ttfts=[0.1, "x", 0.2]),
        json.dumps(vllm()).encode("utf-16"),
        json.dumps(vllm(ttfts="@")).replace('"@"', "[" * 1000 + "]" * 1000),
        json.dumps(vllm(completed="@")).replace('"@"', "9" * 5000),
        vllm(output_lens=[4, 10**19, 4]),
    ]
    for i, case in enumerate(cases):
        path = write(tmp_path, case, f"case{i}.json")
        args = ["validate", str(path), "--scenario", str(scenario_file), "--format", "vllm"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (i, result.output)
        assert result.output.startswith(f"infsim: error: {path}"), (i, result.output)


def test_error_pct_stays_finite_for_tiny_measured_values():
    """A measured 5e-324 s made the error +inf, written as the non-JSON `Infinity`."""
    import numpy as np

    from infsim.validation.compare import compare, error_pct

    assert error_pct(1.0, 5e-324) is None
    assert error_pct(np.float64(1.0), np.float64(5e-324)) is None
    metrics, median = compare(
        {"ttft_mean": 5e-324, "ttft_p50": 0.5}, {"ttft_mean": 1.0, "ttft_p50": 1.0}
    )
    assert metrics["ttft_mean"].error_pct is None
    assert median == 100.0
