"""`infsim run`, `schema`, `catalog` through click: outputs, stable keys, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from infsim.cli import main

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
SMALL = ["--set", "workload.synthetic.num_requests=200"]

SUMMARY_KEYS = {
    "requests": {"total", "completed", "rejected", "preemptions"},
    "throughput": {
        "requests_per_s",
        "output_tokens_per_s",
        "total_tokens_per_s",
        "output_tokens_per_s_per_gpu",
    },
    "slo": {"attainment", "goodput_requests_per_s"},
    "cost": {"usd_total", "usd_per_hour", "usd_per_million_output_tokens", "gpu_hours"},
    "simulation": {"wall_s", "simulated_s", "num_events"},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(main, ["run", str(QUICKSTART), "-o", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    assert "TTFT" in result.output
    return out


def test_run_writes_all_outputs(run_dir: Path):
    for name in ("requests.parquet", "timeline.parquet", "summary.json", "scenario.resolved.yaml"):
        assert (run_dir / name).is_file(), name
    requests = pq.read_table(run_dir / "requests.parquet")
    assert requests.num_rows == 200
    for col in (
        "request_id",
        "replica_id",
        "arrival_s",
        "first_token_s",
        "finish_s",
        "ttft_s",
        "tpot_s",
        "num_cached_tokens",
        "num_preemptions",
        "status",
    ):
        assert col in requests.column_names
    timeline = pq.read_table(run_dir / "timeline.parquet")
    for col in ("start_s", "num_waiting", "num_running", "num_batched_tokens", "kv_usage"):
        assert col in timeline.column_names


def test_summary_has_the_stable_keys(run_dir: Path):
    summary = json.loads((run_dir / "summary.json").read_text())
    for section, keys in SUMMARY_KEYS.items():
        assert keys <= set(summary[section]), section
    for metric in ("ttft", "tpot", "itl", "e2e"):
        assert set(summary["latency_s"][metric]) == {"mean", "p50", "p90", "p95", "p99"}
    assert summary["requests"]["total"] == 200
    assert summary["requests"]["completed"] + summary["requests"]["rejected"] == 200
    assert summary["latency_s"]["ttft"]["p50"] <= summary["latency_s"]["ttft"]["p99"]


def test_resolved_scenario_is_a_valid_scenario_with_defaults_filled(run_dir: Path):
    resolved = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text())
    assert resolved["engine"]["max_model_len"] == 131072
    assert resolved["workload"]["synthetic"]["num_requests"] == 200
    out = run_dir.parent / "again"
    (run_dir.parent / "resolved.yaml").write_text(yaml.safe_dump(resolved))
    result = CliRunner().invoke(
        main, ["run", str(run_dir.parent / "resolved.yaml"), "-o", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "requests.parquet").read_bytes() == (run_dir / "requests.parquet").read_bytes()


def test_json_output_is_the_summary(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["run", str(QUICKSTART), "-o", str(tmp_path), "--json", *SMALL]
    )
    assert result.exit_code == 0
    assert json.loads(result.output)["requests"]["total"] == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "engine.max_num_seq=3"], "did you mean 'max_num_seqs'"),
        (["--set", "model=llama-9b"], "model: unknown model 'llama-9b'"),
        (["--set", "hardware.gpu=h900"], "hardware.gpu: unknown GPU"),
        (["--set", "deployment.tensor_parallel=3"], "does not divide the 32 attention heads"),
        (["--set", "engine.max_num_seqs=0"], "greater than or equal to 1"),
    ],
)
def test_bad_input_exits_2_with_one_paragraph(tmp_path: Path, args: list[str], message: str):
    result = CliRunner().invoke(main, ["run", str(QUICKSTART), "-o", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1  # one paragraph


def test_missing_scenario_file_exits_2(tmp_path: Path):
    result = CliRunner().invoke(main, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "scenario file not found" in result.output


def test_unsorted_trace_is_named_with_its_row(tmp_path: Path):
    trace = tmp_path / "t.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:45.9951690,396,109\n"
    )
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(QUICKSTART),
            "-o",
            str(tmp_path / "o"),
            "--set",
            f"workload={{trace: {{path: {trace}, format: azure}}}}",
        ],
    )
    assert result.exit_code == 2
    assert "t.csv: line 3" in result.output
    assert "sorted" in result.output


def test_schema_is_json_schema_of_scenarios():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Scenario"
    assert {"model", "workload", "hardware", "engine"} <= set(schema["properties"])
    assert "model" in schema["required"]


def test_catalog_lists():
    models = CliRunner().invoke(main, ["catalog", "models"])
    gpus = CliRunner().invoke(main, ["catalog", "gpus"])
    assert models.exit_code == gpus.exit_code == 0
    assert "Llama-3.1-8B" in models.output
    assert "H100-SXM" in gpus.output
