"""The `workload:` scenario section, `build_trace`, the `infsim trace` CLI and the sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from infsim.errors import InputError
from infsim.workload.cli import trace_cli
from infsim.workload.loaders import load_trace
from infsim.workload.spec import WorkloadSpec, build_trace, parse_model

REPO = Path(__file__).resolve().parents[2]

SYNTHETIC = """
workload:
  synthetic:
    num_requests: 400
    arrival: {kind: gamma, rate_per_s: 4, cv: 2}
    prompt_tokens: {kind: lognormal, mean: 1000, sigma: 0.8, min: 1, max: 8192}
    output_tokens: {kind: fixed, value: 200}
    sessions: null
  rate_scale: 2
  start_s: 10
  duration_s: 50
  max_requests: 100
"""


def workload(text: str) -> WorkloadSpec:
    data = yaml.safe_load(text)["workload"]
    return parse_model(WorkloadSpec, data, source="s.yaml", section="workload")


def test_build_trace_order_window_cap_then_scale():
    spec = workload(SYNTHETIC)
    trace = build_trace(spec, base_dir=REPO, rng=np.random.default_rng(1))
    unscaled = workload(SYNTHETIC.replace("max_requests: 100", "max_requests: null"))
    raw = build_trace(unscaled.model_copy(update={"rate_scale": None}), base_dir=REPO,
                      rng=np.random.default_rng(1))  # fmt: skip
    assert raw.arrival_s.max() < 50  # window [10, 60) re-based to 0
    assert trace.num_requests == min(100, raw.num_requests)
    np.testing.assert_allclose(trace.arrival_s, raw.arrival_s[: trace.num_requests] / 2)


def test_trace_source_relative_to_base_dir(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n"
    )
    spec = workload("workload: {trace: {path: sub/t.csv}, time_scale: 2}")
    assert build_trace(spec, base_dir=tmp_path, rng=np.random.default_rng()).num_requests == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workload: {}", "exactly one of workload.trace or workload.synthetic"),
        ("workload: {trace: {path: x}, time_scale: 2, rate_scale: 2}", "not both"),
        ("workload: {trace: {path: x, fromat: csv}}", r"workload\.trace\.fromat: Extra inputs"),
        (
            "workload: {trace: {path: x}, max_requests: 0}",
            r"workload\.max_requests: .*greater than or equal to 1",
        ),
        (
            "workload: {synthetic: {num_requests: 5, arrival: {kind: poison}, "
            "prompt_tokens: {kind: fixed, value: 1}, output_tokens: {kind: fixed, value: 1}}}",
            r"workload\.synthetic\.arrival: .*'poisson', 'gamma'",
        ),
        (
            "workload: {synthetic: {num_requests: 5, arrival: {kind: poisson, rate_per_s: 1}, "
            "prompt_tokens: {kind: lognormal, sigma: 1, max: 9}, "
            "output_tokens: {kind: fixed, value: 1}}}",
            "exactly one of mean or median",
        ),
    ],
)
def test_spec_errors(text, message):
    with pytest.raises(InputError, match=message) as info:
        workload(text)
    assert str(info.value).startswith("s.yaml: ")


def test_empirical_from_trace_and_sessions(tmp_path):
    sample = REPO / "traces" / "sample_chat_sessions.parquet"
    text = f"""
workload:
  synthetic:
    arrival: {{kind: poisson, rate_per_s: 1}}
    prompt_tokens: {{kind: empirical, trace: {{path: {sample}}}, column: num_output_tokens}}
    output_tokens: {{kind: empirical, values: [5, 6]}}
    sessions: {{num_sessions: 5, turns: {{kind: fixed, value: 2}},
               think_time: {{kind: fixed, value_s: 3}}, system_prompt_tokens: 32}}
"""
    trace = build_trace(workload(text), base_dir=tmp_path, rng=np.random.default_rng(0))
    assert trace.num_requests == 10
    assert set(trace.session_ids()) == set(range(5))
    assert all(ids[:2] == [0, 1] for ids in trace.prefix_hash_ids_list())


def test_cli_info_convert_synth(tmp_path):
    runner = CliRunner()
    out = tmp_path / "s.parquet"
    result = runner.invoke(trace_cli, ["synth", str(out), "--seed", "3", "--num-requests",
                                       "50", "--arrival", "gamma", "--cv", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(trace_cli, ["info", str(out), "--json"])
    assert result.exit_code == 0
    assert '"num_requests": 50' in result.output
    csv = tmp_path / "s.csv"
    result = runner.invoke(trace_cli, ["convert", str(out), str(csv), "--rate-scale", "2",
                                       "--max-requests", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_trace(csv).num_requests == 10
    result = runner.invoke(trace_cli, ["info", str(tmp_path / "missing.csv")])
    assert isinstance(result.exception, InputError)  # the main CLI maps this to exit 2
    result = runner.invoke(trace_cli, ["synth", str(out), "--prompt-tokens", "lognormal:1"])
    assert isinstance(result.exception, InputError)


def test_sample_trace_is_reproducible(tmp_path):
    """traces/sample_chat_sessions.parquet is exactly what traces/README.md's command makes."""
    out = tmp_path / "again.parquet"
    spec = REPO / "traces" / "sample_chat_sessions.yaml"
    result = CliRunner().invoke(trace_cli, ["synth", str(out), "--seed", "7", "--spec", str(spec)])
    assert result.exit_code == 0, result.output
    committed = load_trace(REPO / "traces" / "sample_chat_sessions.parquet")
    assert load_trace(out).table.equals(committed.table)
    assert committed.summary()["num_sessions"] == 60
