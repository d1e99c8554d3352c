"""`infsim sweep | results | capacity | optimize | report` through click: outputs, exit codes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from infsim.cli import main
from tests.sweep.conftest import REPO

EXAMPLE = REPO / "scenarios" / "sweep-llama8b.yaml"
EXAMPLE_AXES = REPO / "scenarios" / "sweeps" / "llama8b-gpu-tp.axes.yaml"
SMALL = ["--set", "workload.synthetic.num_requests=120"]


def _invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def example_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    result = _invoke("sweep", EXAMPLE, "--axes", EXAMPLE_AXES, "-o", out, "-j", "2", *SMALL)
    assert result.exit_code == 0, result.output
    assert re.search(r"(\d+) points .* (\d+) skipped, 0 already stored", result.output)
    return out


def test_example_sweep_runs_and_skips_the_constrained_points(example_sweep: Path):
    manifest = json.loads((example_sweep / "sweep.json").read_text())
    assert len(manifest["points"]) + len(manifest["skipped"]) == 16
    skipped = {(s["overrides"]["hardware.gpu"], s["overrides"]["deployment.tensor_parallel"])
               for s in manifest["skipped"]}  # fmt: skip
    assert {("l4", 4), ("l4", 8), ("l40s", 4), ("l40s", 8)} <= skipped
    again = _invoke("sweep", EXAMPLE, "--axes", EXAMPLE_AXES, "-o", example_sweep, "--quiet",
                    *SMALL)  # fmt: skip
    assert again.exit_code == 0
    assert " 0 run now" in again.output


def test_results_filter_sort_and_csv(example_sweep: Path, tmp_path: Path):
    out_csv = tmp_path / "r.csv"
    result = _invoke("results", example_sweep, "--where", "hardware.gpu == 'h100-sxm'",
                     "--sort", "-deployment.tensor_parallel", "--csv", out_csv)  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["deployment.tensor_parallel"] for r in rows] == ["8", "4", "2", "1"]
    assert {r["hardware.gpu"] for r in rows} == {"h100-sxm"}
    assert "latency_s.ttft.p99" in rows[0]
    assert "cost.usd_per_hour" in rows[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "latency_s.ttft.p999 < 1"], "did you mean 'latency_s.ttft.p99'"),
        (["--where", "open('x')"], "is not allowed"),
        (["--sort", "cost.usd_per_hr"], "--sort: no column 'cost.usd_per_hr'"),
    ],
)
def test_results_bad_input_exits_2(example_sweep: Path, args, message):
    result = _invoke("results", example_sweep, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_results_of_a_non_sweep_directory_exits_2(tmp_path: Path):
    result = _invoke("results", tmp_path)
    assert result.exit_code == 2
    assert "not a sweep directory" in result.output


def test_report_for_a_sweep_and_a_run_is_self_contained_html(example_sweep: Path, tmp_path):
    result = _invoke("report", example_sweep)
    assert result.exit_code == 0, result.output
    page = (example_sweep / "report.html").read_text()
    assert "Cost vs p99 latency" in page
    assert "Skipped" in page
    assert page.count("data:image/png;base64,") == 1
    assert "http://" not in page
    assert "https://" not in page
    run_dir = tmp_path / "run"
    assert _invoke("run", EXAMPLE, "-o", run_dir, "--quiet", *SMALL).exit_code == 0
    assert _invoke("report", run_dir).exit_code == 0
    run_page = (run_dir / "report.html").read_text()
    assert run_page.count("data:image/png;base64,") == 2  # latency CDFs, timeline
    assert "<script" not in run_page


def test_capacity_and_optimize_commands(tmp_path: Path):
    cap = _invoke("capacity", EXAMPLE, *SMALL, "--ttft-p99", "0.5", "--rel-tol", "0.1",
                  "-o", tmp_path / "cap")  # fmt: skip
    assert cap.exit_code == 0, cap.output
    assert re.search(r"capacity: [\d.]+ req/s \(rate_scale [\d.]+; misses at", cap.output)
    assert _invoke("report", tmp_path / "cap").exit_code == 0
    assert "Capacity curve" in (tmp_path / "cap" / "report.html").read_text()
    opt = _invoke("optimize", EXAMPLE, "--space", EXAMPLE_AXES, *SMALL, "--trials", "6", "--seed",
                  "3", "--executor", "serial", "-o", tmp_path / "opt", "--quiet")  # fmt: skip
    assert opt.exit_code == 0, opt.output
    assert "Pareto front" in opt.output
    assert _invoke("report", tmp_path / "opt").exit_code == 0


def test_sweep_without_axes_exits_2(tmp_path: Path):
    result = _invoke("sweep", EXAMPLE, "-o", tmp_path)
    assert result.exit_code == 2
    assert "no axes: give --axes" in result.output


def test_a_sweep_block_in_the_scenario_is_used_and_excludes_axes(write_yaml, tmp_path: Path):
    from tests.sweep.conftest import BASE

    scenario = write_yaml("with-block.yaml", {**BASE, "sweep": {"axes": {"seed": [1, 2]}}})
    result = _invoke("sweep", scenario, "-o", tmp_path / "s", "--executor", "serial", "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 points (2 distinct)" in result.output
    axes = write_yaml("axes.yaml", {"axes": {"seed": [1]}})
    both = _invoke("sweep", scenario, "--axes", axes, "-o", tmp_path / "t")
    assert both.exit_code == 2
    assert "use one of them" in both.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--ttft-p99", "0"], "--ttft-p99"),
        (["--ttft-p99", "-1"], "--ttft-p99"),
        (["--tpot-p99", "inf"], "--tpot-p99"),
        (["--e2e-p99", "nan"], "--e2e-p99"),
        (["--e2e-p99", "1e999"], "--e2e-p99"),
        (["--ttft-p99", "fast"], "--ttft-p99"),
        (["--min-attainment", "0"], "--min-attainment"),
        (["--min-attainment", "1.5"], "--min-attainment"),
        (["--min-attainment", "nan"], "--min-attainment"),
        (["--rel-tol", "nan"], "--rel-tol"),
        (["--rel-tol", "0"], "--rel-tol"),
    ],
)
def test_capacity_refuses_nonsense_numbers_naming_the_option(tmp_path: Path, args, option):
    """`--ttft-p99 0` used to divide by zero in the middle of the search."""
    result = _invoke("capacity", EXAMPLE, *SMALL, *args, "-o", tmp_path / "cap")
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "cap").exists(), "refused before any work"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--trials", "0"], "--trials"),
        (["--trials", "1000000000000"], "--trials"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**40)], "--seed"),
        (["-j", "0"], "-j"),
        (["-j", "100000000"], "-j"),
        (["--ttft-p99", "-inf"], "--ttft-p99"),
    ],
)
def test_optimize_refuses_nonsense_numbers_naming_the_option(tmp_path: Path, args, option):
    result = _invoke("optimize", EXAMPLE, "--space", EXAMPLE_AXES, *SMALL, *args, "-o",
                     tmp_path / "opt")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output


def test_library_slo_targets_refuse_nonsense_too():
    from infsim.errors import InputError
    from infsim.sweep.search import SLOTarget

    for bad in ({"ttft_p99_s": 0.0}, {"e2e_p99_s": float("inf")}, {"min_attainment": 0.0}):
        with pytest.raises(InputError, match="is not allowed"):
            SLOTarget(**bad)


def test_a_grid_over_the_limit_is_refused_up_front_with_its_size(write_yaml, tmp_path: Path):
    """30⁵ points used to be materialised (and validated one by one) before anything ran.
    In a child with a timeout, so that a regression fails instead of hanging."""
    import os
    import subprocess
    import sys

    from tests.sweep.conftest import BASE

    scenario = write_yaml("base.yaml", BASE)
    axes = write_yaml("huge.yaml", {"axes": {
        "engine.max_num_seqs": list(range(1, 31)), "seed": list(range(30)),
        "engine.block_size": [16] * 30, "workload.rate_scale": [1.0] * 30,
        "deployment.replicas": [1] * 30}})  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "infsim", "sweep", str(scenario), "--axes",
                           str(axes), "-o", str(tmp_path / "s"), "--quiet"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "the sweep has 24,300,000 points (grid of 30 × 30 × 30 × 30 × 30 values)" in (
        done.stderr
    )
    assert "--max-points N" in done.stderr
    small = write_yaml("small.yaml", {"axes": {"seed": [1, 2, 3]}})
    over = _invoke("sweep", scenario, "--axes", small, "-o", tmp_path / "t", "--max-points", "2")
    assert over.exit_code == 2
    assert "the sweep has 3 points" in over.output
    ok = _invoke("sweep", scenario, "--axes", small, "-o", tmp_path / "t", "--max-points", "3",
                 "--executor", "serial", "--quiet")  # fmt: skip
    assert ok.exit_code == 0, ok.output
