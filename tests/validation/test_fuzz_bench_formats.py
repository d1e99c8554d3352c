"""Fuzzing the benchmark parsers (issue 15): every mutated benchmark file is either read or
refused with one `InputError` naming it — never another exception, never a numpy warning,
never more than a few seconds.

Each format has small valid examples written here by hand (the shapes of the staged real
outputs, FORMATS.md §1); Hypothesis mutates them structurally (a value at any path replaced
by a null, a bool, a string, a list, an object, a huge, negative or non-finite number; keys
dropped or added; arrays cut, grown or nested) and as bytes (truncation, stray bytes,
UTF-16, nesting 1,000 deep, integers of 5,000 digits), then parses them through the public
loader `load_measured` (auto-detected and with the format named) and, when a file is read,
takes it through what `validate` derives from it before simulating: the model check, the
replay rows and trace, the measured statistics and the comparison.

CI runs `FUZZ_EXAMPLES` (default 150) examples per seed; a longer campaign:

    INFSIM_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/validation/test_fuzz_bench_formats.py
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infsim.errors import InputError
from infsim.validation.compare import compare, measured_stats
from infsim.validation.formats import load_measured
from infsim.validation.measured import STAT_KEYS, MeasuredRun
from infsim.validation.replay import check_model, replay_trace, successful_rows
from infsim.validation.validate import _recorded
from tests import fuzzing

FUZZ_EXAMPLES = int(os.environ.get("INFSIM_FUZZ_EXAMPLES", "150"))
SECONDS_PER_EXAMPLE = 20
"""An example that takes longer is a hang (an alarm fails it)."""
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DEEP, HUGE = "@@deep@@", "@@huge@@"
"""Placeholders replaced in the serialised text by nesting 1,000 deep and a 5,000-digit
integer (neither can be built as a Python value and serialised)."""


# -- seeds: small valid files of every format ----------------------------------------------


def vllm_detailed(num: int = 3) -> dict[str, Any]:
    ttfts = [0.05 + 0.01 * i for i in range(num)]
    itls = [[0.02, 0.03] for _ in range(num)]
    return {
        "date": "20261123-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B",
        "tokenizer_id": "meta-llama/Llama-3.1-8B", "num_prompts": num, "request_rate": 2.0,
        "burstiness": 1.0, "max_concurrency": None, "duration": 2.0, "completed": num - 1,
        "failed": 1, "output_throughput": 4.5, "input_lens": [32] * num,
        "output_lens": [3] * (num - 1) + [0], "ttfts": ttfts, "itls": itls,
        "start_times": [1000.0 + 0.5 * i for i in range(num)],
        "latencies": [t + 0.05 for t in ttfts], "errors": [""] * (num - 1) + ["Timeout"],
        "mean_ttft_ms": 60.0, "median_ttft_ms": 60.0, "p99_ttft_ms": 70.0, "mean_itl_ms": 25.0,
        "p90_e2el_ms": 120.0,
    }  # fmt: skip


def vllm_aggregates() -> dict[str, Any]:
    run = vllm_detailed()
    for key in ("input_lens", "output_lens", "ttfts", "itls", "errors", "start_times"):
        del run[key]
    return run | {"request_rate": "inf", "max_concurrency": 4, "request_goodput:": None}


def sglang_run(details: bool) -> dict[str, Any]:
    run = {
        "backend": "sglang", "dataset_name": "random", "request_rate": float("inf"),
        "max_concurrency": None, "duration": 3.0, "completed": 2, "output_throughput": 10.0,
        "mean_e2e_latency_ms": 300.0, "median_e2e_latency_ms": 290.0, "median_ttft_ms": 50.0,
        "median_itl_ms": 12.0, "server_info": {"model_path": "meta-llama/Llama-3.1-8B"},
    }  # fmt: skip
    if details:
        itls = [[0.01, 0.02, 0.01], [0.01, 0.01, 0.02, 0.01]]
        run |= {"input_lens": [16, 20], "output_lens": [4, 5], "ttfts": [0.05, 0.06],
                "itls": itls, "errors": ["", ""]}  # fmt: skip
    return run


def aiperf_record(i: int, failed: bool = False) -> dict[str, Any]:
    meta = {"x_request_id": f"r{i}", "timestamp_ns": 1759522419154829652 + i * 10**8,
            "credit_phase": "profiling"}  # fmt: skip
    if failed:
        error = {"code": 499, "type": "RequestCancellationError", "message": "cancelled"}
        count = {"error_request_count": {"value": 1, "unit": "requests"}}
        return {"metadata": meta, "metrics": count, "error": error}
    metrics = {
        "input_sequence_length": {"value": 550, "unit": "tokens"},
        "ttft": {"value": 1680.5 + i, "unit": "ms"},
        "request_latency": {"value": 7936.9 + i, "unit": "ms"},
        "output_sequence_length": {"value": 4, "unit": "tokens"},
        "inter_chunk_latency": {"value": [134.4, 141.3, 140.1], "unit": "ms"},
        "min_request_timestamp": {"value": 1759522419159192408, "unit": "ns"},
    }
    return {"metadata": meta, "metrics": metrics, "error": None}


def aiperf_aggregate() -> dict[str, Any]:
    def metric(tag: str, unit: str, avg: float, **more: float) -> dict[str, Any]:
        return {"tag": tag, "unit": unit, "header": tag.title(), "avg": avg, **more}

    return {
        "records": {
            "ttft": metric("ttft", "ms", 2343.2, p50=2369.3, p90=3796.9, p99=3833.4),
            "request_latency": metric("request_latency", "ms", 9059.6, p99=9297.6),
            "inter_chunk_latency": metric("inter_chunk_latency", "ms", 30.0, p99=140.5),
            "request_count": metric("request_count", "requests", 2.0),
            "error_request_count": metric("error_request_count", "requests", 1.0),
            "output_token_throughput": metric("output_token_throughput", "tokens/sec", 9.5),
            "benchmark_duration": metric("benchmark_duration", "sec", 9.3),
        },
        "input_config": {"endpoint": {"model_names": ["openai/gpt-oss-20b"]}},
    }


def guidellm_report() -> dict[str, Any]:
    def row(i: int) -> dict[str, Any]:
        start = 1749157168.18 + i
        return {"request_id": f"r{i}", "prompt_tokens": 257, "output_tokens": 128,
                "start_time": start, "end_time": start + 0.69, "first_token_time": start + 0.02,
                "time_to_first_token_ms": 21.3, "request_latency": 0.69}  # fmt: skip

    def summary(mean: float) -> dict[str, Any]:
        pct = {"p50": mean, "p90": mean * 1.1, "p99": mean * 1.2}
        return {"successful": {"mean": mean, "median": mean, "total_sum": mean * 2,
                               "percentiles": pct}}  # fmt: skip

    errored = row(2) | {"output_tokens": None, "end_time": None}
    return {
        "benchmarks": [{
            "type_": "generative_benchmark",
            "args": {"strategy": {"type_": "synchronous"}},
            "worker": {"backend_model": "example_model"},
            "metrics": {"time_to_first_token_ms": summary(21.3), "inter_token_latency_ms":
                        summary(5.2), "request_latency": summary(0.69),
                        "output_token_count": summary(128.0)},
            "request_totals": {"successful": 2, "errored": 1, "incomplete": 0, "total": 3},
            "requests": {"successful": [row(0), row(1)], "errored": [errored], "incomplete": []},
            "duration": 3.0,
        }]
    }  # fmt: skip


def llmperf_rows() -> list[dict[str, Any]]:
    row = {"error_code": None, "error_msg": "", "inter_token_latency_s": 0.0058,
           "ttft_s": 0.298, "end_to_end_latency_s": 0.89, "number_total_tokens": 700,
           "number_output_tokens": 150, "number_input_tokens": 550}  # fmt: skip
    failed = {"error_code": 500, "error_msg": "server error", "ttft_s": None,
              "end_to_end_latency_s": None, "number_output_tokens": 0}  # fmt: skip
    return [row, row | {"ttft_s": 0.31}, failed]


def inprocess_v1(i: int) -> dict[str, Any]:
    return {"request_id": str(i), "model": "meta-llama/Llama-3.1-8B", "num_prompt_tokens": 32,
            "num_output_tokens": 4, "metrics": {
                "arrival_time": 1000.0 + i, "queued_ts": 50.01 + i, "scheduled_ts": 50.02 + i,
                "first_token_ts": 50.1 + i, "last_token_ts": 50.4 + i,
                "first_token_latency": 0.125 + 0.01 * i, "num_generation_tokens": 4}}  # fmt: skip


def inprocess_v0(i: int) -> dict[str, Any]:
    return {"request_id": i, "prompt_token_ids": [1, 2, 3], "output_token_ids": [4, 5],
            "metrics": {"arrival_time": 2000.0 + i, "first_token_time": 2000.2 + i,
                        "last_token_time": 2000.7 + i, "first_scheduled_time": 2000.01 + i,
                        "time_in_queue": 0.01, "finished_time": 2000.8 + i}}  # fmt: skip


@dataclass(frozen=True)
class Seed:
    """A valid benchmark file (`main`) with its siblings; `lines`: written as JSON Lines."""

    name: str
    fmt: str
    files: dict[str, Any]
    main: str
    lines: bool = False


SEEDS = [
    Seed("vllm-detailed", "vllm", {"result.json": vllm_detailed()}, "result.json"),
    Seed("vllm-aggregates", "vllm", {"result.json": vllm_aggregates()}, "result.json"),
    Seed("vllm-append", "vllm", {"result.jsonl": [vllm_detailed(2), vllm_aggregates()]},
         "result.jsonl", lines=True),
    Seed("sglang", "sglang", {"bench.jsonl": [sglang_run(True), sglang_run(False)]},
         "bench.jsonl", lines=True),
    Seed("aiperf-records", "aiperf",
         {"profile_export.jsonl": [aiperf_record(0), aiperf_record(1, failed=True),
                                   aiperf_record(2)],
          "profile_export_aiperf.json": aiperf_aggregate()}, "profile_export.jsonl", lines=True),
    Seed("aiperf-aggregate", "aiperf", {"profile_export_aiperf.json": aiperf_aggregate()},
         "profile_export_aiperf.json"),
    Seed("guidellm", "guidellm", {"benchmarks.json": guidellm_report()}, "benchmarks.json"),
    Seed("llmperf", "llmperf",
         {"x_individual_responses.json": llmperf_rows(),
          "x_summary.json": {"model": "llama2-70b-4096",
                             "results_mean_output_throughput_token_per_s": 441.8}},
         "x_individual_responses.json"),
    Seed("inprocess-v1", "vllm-inprocess", {"run.jsonl": [inprocess_v1(i) for i in range(3)]},
         "run.jsonl", lines=True),
    Seed("inprocess-v0", "vllm-inprocess", {"run.jsonl": [inprocess_v0(i) for i in range(3)]},
         "run.jsonl", lines=True),
]  # fmt: skip


# -- mutations -----------------------------------------------------------------------------

NASTY: list[Any] = [
    None, True, False, "", "x", "12", "1.5", "inf", "NaN", -1, 0, 1, 3, 2**31, 2**63, 2**64,
    -(2**63) - 1, 10**30, 10**400, 1e308, -1e308, 5e-324, -0.0, 0.5, 1e-3, 1e12, 1e19,
    math.nan, math.inf, -math.inf, [], [None], [[1]], [1e308, 1e308], ["a"], [-1.0], {},
    {"value": None}, {"value": "x", "unit": "ms"}, {"value": [1, "2"], "unit": "s"},
    {"a": {"b": []}}, DEEP, HUGE,
]  # fmt: skip
KEYS = [
    "model_id", "model", "tokenizer_id", "errors", "itls", "ttfts", "input_lens", "output_lens",
    "start_times", "latencies", "failed", "completed", "duration", "max_concurrency",
    "request_rate", "output_throughput", "mean_ttft_ms", "p99_e2el_ms", "median_itl_ms",
    "metrics", "metadata", "error", "requests", "request_totals", "benchmarks", "worker",
    "records", "input_config", "server_info", "finished", "request_id", "num_prompt_tokens",
    "num_output_tokens", "prompt_token_ids", "first_token_latency", "arrival_time", "unit",
    "value", "ttft", "time_to_first_token", "inter_chunk_latency", "error_code", "error_msg",
]  # fmt: skip
values = st.one_of(
    st.sampled_from(NASTY),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.one_of(st.none(), st.floats(), st.integers(), st.text(max_size=3)), max_size=4),
)


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (keys and indices) to a value inside `value`, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def get(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def mutate_tree(data: st.DataObject, tree: Any) -> Any:
    """One structural change at a random place of a deep copy of `tree`."""
    tree = json.loads(json.dumps(tree))
    path = data.draw(st.sampled_from(list(paths(tree))), label="path")
    op = data.draw(st.sampled_from(["replace", "replace", "drop", "add", "list", "wrap"]))
    new = data.draw(values, label="value")
    if not path:
        return new if op == "replace" else [tree] if op == "wrap" else tree
    parent, last = get(tree, path[:-1]), path[-1]
    if op == "replace":
        parent[last] = new
    elif op == "drop":
        del parent[last]
    elif op == "wrap":
        parent[last] = data.draw(st.sampled_from([[parent[last]], {"value": parent[last]}]))
    elif op == "add" and isinstance(parent, dict):
        parent[data.draw(st.sampled_from(KEYS), label="key")] = new
    elif op == "list" and isinstance(parent[last], list):
        items = parent[last]
        change = data.draw(st.sampled_from(["cut", "grow", "empty", "nest"]))
        if change == "cut" and items:
            items.pop()
        elif change == "grow":
            items.append(new)
        elif change == "empty":
            items.clear()
        else:
            parent[last] = [items]
    else:
        parent[last] = new
    return tree


def serialise(value: Any, lines: bool) -> str:
    if lines and isinstance(value, list):
        text = "\n".join(json.dumps(v, allow_nan=True) for v in value) + "\n"
    else:
        text = json.dumps(value, allow_nan=True, indent=1)
    text = text.replace(json.dumps(DEEP), "[" * 1000 + "]" * 1000)
    return text.replace(json.dumps(HUGE), "9" * 5000)


def mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    op = data.draw(st.sampled_from(["none", "cut", "insert", "flip", "utf16", "latin1", "bom"]))
    at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="offset")
    if op == "cut":
        return raw[:at]
    if op == "insert":
        return raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if op == "flip" and raw:
        return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    if op == "utf16":
        return raw.decode("utf-8").encode("utf-16")
    if op == "latin1":
        return raw.replace(b'"', '"\xe9'.encode("latin-1"), 1)
    if op == "bom":
        return b"\xef\xbb\xbf" + raw
    return raw


def write_mutated(data: st.DataObject, seed: Seed, folder: Path) -> Path:
    """Write the seed's files into `folder` with one of them mutated."""
    target = data.draw(st.sampled_from(sorted(seed.files)), label="file") if (
        len(seed.files) > 1 and data.draw(st.booleans(), label="mutate a sibling")
    ) else seed.main  # fmt: skip
    for name, content in seed.files.items():
        lines = seed.lines and name == seed.main
        if name == target:
            for _ in range(data.draw(st.integers(0, 3), label="tree mutations")):
                content = mutate_tree(data, content)
            raw = mutate_bytes(data, serialise(content, lines).encode())
        else:
            raw = serialise(content, lines).encode()
        (folder / name).write_bytes(raw)
    return folder / seed.main


# -- the properties ------------------------------------------------------------------------


def bounded(seconds: int = SECONDS_PER_EXAMPLE) -> contextlib.AbstractContextManager[None]:
    """`tests.fuzzing.bounded` at this module's bound."""
    return fuzzing.bounded(seconds)


def derive(run: MeasuredRun) -> None:
    """What `validate` computes from a read file before and after simulating."""
    run.why_not_replayable()
    _recorded(run)
    with contextlib.suppress(InputError):  # another model is a refusal, not a crash
        check_model(run, "meta-llama/Llama-3.1-8B", "llama-3.1-8b")
    rows = run.requests
    if run.replayable:
        try:
            rows, _ = successful_rows(run, None)
        except InputError:
            return
        replay_trace(rows, run.source)
        replay_trace(rows, run.source, send_at_once=True)
    values, _ = measured_stats(run, rows)
    compare(values, dict.fromkeys(STAT_KEYS, 1.0))
    compare(values, dict.fromkeys(STAT_KEYS))


def parse_or_refuse(path: Path, fmt: str) -> None:
    with bounded():
        try:  # deriving the replay may refuse too (a start time past the trace bounds)
            derive(load_measured(path, fmt))
        except InputError as err:
            message = str(err)
            assert str(path.parent) in message, message  # names the file (or its sibling)
            assert "\n" not in message, message  # one paragraph


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
def test_seeds_are_valid(seed: Seed, tmp_path: Path) -> None:
    for name, content in seed.files.items():
        (tmp_path / name).write_text(serialise(content, seed.lines and name == seed.main))
    for fmt in ("auto", seed.fmt):
        run = load_measured(tmp_path / seed.main, fmt, 0 if seed.name.endswith("append") or
                            seed.name == "sglang" else None)  # fmt: skip
        assert run.format == seed.fmt
        derive(run)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
@FUZZ
@given(data=st.data())
def test_mutated_files_parse_or_refuse(seed: Seed, data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(["auto", seed.fmt]), label="format")
    with tempfile.TemporaryDirectory(prefix="infsim-fuzz-") as folder:
        parse_or_refuse(write_mutated(data, seed, Path(folder)), fmt)


SCENARIO = """\
name: fuzz
model: llama-3.1-8b
hardware: {gpu: h100-sxm}
workload:
  synthetic:
    num_requests: 2
    arrival: {kind: poisson, rate_per_s: 2.0}
    prompt_tokens: {kind: fixed, value: 16}
    output_tokens: {kind: fixed, value: 3}
"""


@settings(FUZZ, max_examples=max(FUZZ_EXAMPLES // 5, 20))
@given(data=st.data(), seed=st.sampled_from(SEEDS))
def test_validate_cli_exits_0_or_2(data: st.DataObject, seed: Seed) -> None:
    """The whole `infsim validate` on mutated files: a result (0) or a message (2)."""
    from infsim.cli import main

    with tempfile.TemporaryDirectory(prefix="infsim-fuzz-") as folder:
        bench = write_mutated(data, seed, Path(folder))
        scenario = Path(folder) / "scenario.yaml"
        scenario.write_text(SCENARIO)
        args = ["validate", str(bench), "--scenario", str(scenario), "--json",
                "--allow-model-mismatch"]  # fmt: skip
        if seed.lines and seed.fmt in ("vllm", "sglang"):
            args += ["--run", "0"]
        with bounded():
            result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 2), result.output
    assert "internal error" not in result.output, result.output
