"""slo.confidence: "meets the SLO" = the pessimistic bound of the prediction interval does
(SLOTarget.met_with_confidence), and `infsim capacity` honours it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from infsim.cli import main
from infsim.sweep.search import SLOTarget

REPO = Path(__file__).resolve().parents[2]


def test_met_with_confidence_uses_the_pessimistic_bound() -> None:
    target = SLOTarget(ttft_p99_s=1.0, min_attainment=0.9)
    row = {"latency_s.ttft.p99": 0.8, "slo.attainment": 0.95}
    tight = [{"latency_s.ttft.p99": v, "slo.attainment": 0.95} for v in (0.78, 0.8, 0.82)]
    loose = [{"latency_s.ttft.p99": v, "slo.attainment": 0.95} for v in (0.5, 0.8, 1.2)]
    assert target.met(row)
    assert target.met_with_confidence(row, tight, 0.9)
    assert not target.met_with_confidence(row, loose, 0.9)  # the upper bound is above 1 s
    low_attainment = [{"latency_s.ttft.p99": 0.8, "slo.attainment": a} for a in (0.85, 0.95, 1.0)]
    assert not target.met_with_confidence(row, low_attainment, 0.9)
    bounds = target.bound_row(row, loose, 0.9)
    assert bounds["latency_s.ttft.p99"] > 1.2
    assert not target.met_with_confidence(row, loose[:1], 0.9)  # too few: not met
    failed = [{"status": "failed"}] * 3
    assert not target.met_with_confidence(row, failed, 0.9)


def _capacity(out: Path, *sets: str) -> float:
    args = ["capacity", str(REPO / "scenarios" / "quickstart.yaml"), "-o", str(out),
            "--set", "workload.synthetic.num_requests=150", "--rel-tol", "0.1"]  # fmt: skip
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    confident = any(item.startswith("slo.confidence=") for item in sets)
    assert ("with 90% confidence" in result.output) == confident  # the result line says so
    return json.loads((out / "sweep.json").read_text())["result"]["capacity_rate_per_s"]


def test_capacity_with_confidence_is_lower(tmp_path: Path) -> None:
    plain = _capacity(tmp_path / "plain")
    assert not (tmp_path / "plain" / "replications").exists()
    confident = _capacity(tmp_path / "conf", "slo.confidence=0.9")
    assert len(list((tmp_path / "conf" / "replications" / "points").glob("*.parquet"))) >= 10
    assert confident < plain


def test_plan_with_confidence_needs_more_replicas(tmp_path: Path) -> None:
    def replicas(out: Path, *sets: str) -> int:
        args = ["plan", str(REPO / "scenarios" / "quickstart.yaml"), "--gpu", "h100-sxm",
                "--tensor-parallel", "1", "--target-rate", "20", "-o", str(out),
                "--set", "workload.synthetic.num_requests=150"]  # fmt: skip
        for item in sets:
            args += ["--set", item]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return int(pd.read_parquet(out / "plan.parquet")["replicas"].iloc[0])

    plain = replicas(tmp_path / "plain")
    confident = replicas(tmp_path / "conf", "slo.confidence=0.9")
    assert (tmp_path / "conf" / "replications" / "points").is_dir()
    assert confident > plain
