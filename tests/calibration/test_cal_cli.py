"""`infsim calibrate list|import|report` through click."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.cost.table import read

REPO = Path(__file__).resolve().parents[2]

APEX = "gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\n"


def _apex(path: Path, rows: list[str]) -> Path:
    path.write_text(APEX + "".join(r + "\n" for r in rows))
    return path


def test_list_shows_the_shipped_calibrations():
    result = CliRunner().invoke(main, ["calibrate", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("h100-vllm-0.19", "a100-vllm-0.14", "rtx4090-vllm-0.19"):
        assert name in result.output


def test_import_writes_a_valid_calibration(tmp_path: Path):
    src = _apex(
        tmp_path / "all_reduce.csv",
        ["H100,1,2,half,64,12.5", "H100,1,2,half,1024,30.0", "H100,1,4,half,64,15.0"],
    )
    out = tmp_path / "cal"
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            "import",
            "nccl-tests",
            str(src),
            "--name",
            "mine",
            "--device",
            "H100-SXM",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table, meta = read(out)
    assert (meta.name, meta.device) == ("mine", "H100-SXM")
    assert table.num_rows == 3
    assert table.column("message_bytes").to_pylist()[1] == 1024 * 1024
    assert table.column("time_s").to_pylist()[0] == pytest.approx(12.5e-6, rel=1e-12)
    again = CliRunner().invoke(main, ["calibrate", "import", "nccl-tests", str(src),
                                      "--name", "mine", "-o", str(out)])  # fmt: skip
    assert again.exit_code == 2
    assert "already exists" in again.output


def test_import_is_all_or_nothing(tmp_path: Path):
    good = _apex(tmp_path / "all_reduce.csv", ["H100,1,2,half,64,12.5"])
    bad = tmp_path / "all_gather.csv"
    bad.write_text("gpu,num_nodes,dtype,size(kb)\nH100,1,half,64\n")
    out = tmp_path / "cal"
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            "import",
            "nccl-tests",
            str(good),
            str(bad),
            "--name",
            "x",
            "--device",
            "H100-SXM",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "all_gather.csv" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unknown_format_lists_the_formats(tmp_path: Path):
    result = CliRunner().invoke(main, ["calibrate", "import", "nsys-foo", str(tmp_path),
                                       "--name", "x"])  # fmt: skip
    assert result.exit_code == 2
    assert "aiconfigurator" in result.output


def test_report_json_has_errors_coverage_and_scenario_lookups():
    result = CliRunner().invoke(main, ["calibrate", "report", "rtx4090-vllm-0.19", "--json",
                                       "--scenario", str(REPO / "scenarios/quickstart.yaml"),
                                       "--set", "hardware.gpu=rtx-4090",
                                       "--set", "engine.max_num_seqs=64"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    ops = {r["op"]: r for r in data["leave_one_out"]}
    assert ops["gemm"]["points"] > 100
    assert ops["gemm"]["median_abs_err_pct"] < 5
    lookups = {(e["op"], e["method"]) for e in data["scenario_lookups"]}
    assert ("gemm", "measured") in lookups
    assert any(op == "attention_decode" for op, _ in lookups)
