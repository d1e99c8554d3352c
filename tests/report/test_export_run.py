"""`infsim export vllm-bench|perfetto`: a run in vLLM's benchmark JSON (read back by infsim's
own vLLM reader and replayed to the same numbers) and as a Chrome/Perfetto trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.report.read import read_run
from infsim.validation.formats.vllm import read_vllm
from infsim.workload.loaders import load_trace

SCENARIO = {
    "name": "export-test",
    "seed": 3,
    "model": "llama-3.1-8b",
    "hardware": {"gpu": "h100-sxm"},
    "engine": {"max_model_len": 2048},
    "workload": {
        "synthetic": {
            "num_requests": 120,
            "arrival": {"kind": "poisson", "rate_per_s": 20},
            "prompt_tokens": {
                "kind": "lognormal",
                "mean": 600,
                "sigma": 0.9,
                "min": 8,
                "max": 4000,
            },
            "output_tokens": {"kind": "lognormal", "mean": 80, "sigma": 0.6, "min": 1, "max": 400},
        }
    },
    "slo": {"ttft_s": 0.2, "tpot_s": 0.02},
}


CLEAN = {**SCENARIO, "engine": {}}  # no request over max_model_len: none rejected


def _run(base: Path, raw: dict) -> Path:
    path = base / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = base / "run"
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("export"), SCENARIO)


@pytest.fixture(scope="module")
def clean_run_dir(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("export-clean"), CLEAN)


def _export(run_dir: Path, *args: str) -> Path:
    result = CliRunner().invoke(main, ["export", *args, str(run_dir)])
    assert result.exit_code == 0, result.output
    return Path(result.output.split("wrote ", 1)[1].split(" (")[0].strip())


def test_vllm_bench_keys_units_and_rejected_requests(run_dir: Path) -> None:
    data = json.loads(_export(run_dir, "vllm-bench").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    requests = read_run(run_dir).requests
    status = np.array(requests.column("status").to_pylist())
    done = status == "finished"
    assert 0 < done.sum() < len(status)  # prompts over max_model_len are rejected
    assert data["num_prompts"] == 120
    assert data["completed"] == int(done.sum())
    assert data["failed"] == int((~done).sum())
    assert data["mean_ttft_ms"] == pytest.approx(summary["latency_s"]["ttft"]["mean"] * 1000)
    assert data["p99_e2el_ms"] == pytest.approx(summary["latency_s"]["e2e"]["p99"] * 1000)
    assert data["p99_itl_ms"] == pytest.approx(summary["latency_s"]["itl"]["p99"] * 1000)
    assert {"p50_ttft_ms", "p99.9_ttft_ms", "std_tpot_ms", "request_goodput"} <= set(data)
    assert "itls" not in data
    assert "itls" in data["infsim"]["not_included"]
    errors = np.array(data["errors"])
    assert np.array_equal(errors == "", done)
    assert all(data["output_lens"][i] == 0 for i in np.flatnonzero(~done))
    assert data["date"] == "simulated"
    assert data["backend"] == "infsim"


def test_vllm_bench_export_replays_to_the_same_numbers(clean_run_dir: Path, tmp_path: Path) -> None:
    exported = _export(clean_run_dir, "vllm-bench")
    measured = read_vllm(exported, None)
    assert measured.requests is not None
    assert measured.requests.start_s is not None
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(CLEAN))
    result = CliRunner().invoke(
        main, ["validate", str(exported), "--scenario", str(scenario), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    errors = {k: m["error_pct"] for k, m in metrics.items() if m["error_pct"] is not None}
    assert len(errors) >= 16
    assert max(abs(v) for v in errors.values()) < 1e-6, errors


def test_vllm_bench_export_reads_as_a_trace(run_dir: Path) -> None:
    exported = _export(run_dir, "vllm-bench")
    requests = read_run(run_dir).requests
    done = np.array(requests.column("status").to_pylist()) == "finished"
    arrival = np.asarray(requests.column("arrival_s"))
    with pytest.raises(InputError, match="the request failed"):  # as a real failed run
        load_trace(exported, "vllm-bench")
    trace = load_trace(exported, "vllm-bench", drop_failed=True)
    assert trace.num_requests == int(done.sum())
    assert np.allclose(trace.arrival_s, (arrival - arrival.min())[done], rtol=0, atol=1e-9)


def test_perfetto_trace_is_well_formed_and_says_when_cut(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["export", "perfetto", "--max-requests", "30", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "the first 30 of 120 requests" in result.output
    events = json.loads((run_dir / "trace.perfetto.json").read_text())["traceEvents"]
    steps = [e for e in events if e["ph"] == "X"]
    assert steps
    assert all(e["dur"] >= 0 for e in steps)
    opened: dict[tuple[int, str], float] = {}
    for e in (e for e in events if e["ph"] in "be"):
        key = (e["id"], e["name"])
        if e["ph"] == "b":
            opened[key] = e["ts"]
        else:
            assert e["ts"] >= opened.pop(key)  # every slice closes after it opens
    assert not opened
    ids = {e["id"] for e in events if e.get("cat") == "request"}
    assert len(ids) == 30
    whole = CliRunner().invoke(main, ["export", "perfetto", str(run_dir)])
    assert whole.exit_code == 0
    assert "first" not in whole.output


def test_export_refuses_a_directory_that_is_not_a_complete_run(tmp_path: Path) -> None:
    (tmp_path / "requests.parquet").write_bytes(b"not parquet")
    for kind in ("vllm-bench", "perfetto"):
        result = CliRunner().invoke(main, ["export", kind, str(tmp_path)])
        assert result.exit_code == 2
        assert "not a complete infsim run" in result.output
        assert "Traceback" not in result.output


def test_export_is_deterministic(run_dir: Path, tmp_path: Path) -> None:
    a = _export(run_dir, "vllm-bench").read_bytes()
    result = CliRunner().invoke(
        main, ["export", "vllm-bench", str(run_dir), "-o", str(tmp_path / "b.json")]
    )
    assert result.exit_code == 0
    assert (tmp_path / "b.json").read_bytes() == a
