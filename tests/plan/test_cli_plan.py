"""`infsim plan` end to end on a tiny workload: exact columns, skipped candidates shown,
the ranking, and a second run that resumes from the store with identical output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from infsim.cli import main
from infsim.plan.output import COLUMNS, PUBLIC_COLUMNS
from infsim.sweep.store import ResultStore

ARGS = ("--gpu", "h100-sxm", "--gpu", "l4", "--tensor-parallel", "1", "--tensor-parallel", "3",
        "--target-rate", "6", "--executor", "serial", "--max-headroom", "2")  # fmt: skip


def _plan(*args: str):
    return CliRunner().invoke(main, ["plan", *args])


@pytest.fixture(scope="module")
def planned(tmp_path_factory, tiny_text: str) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("plan")
    scenario = root / "tiny.yaml"
    scenario.write_text(tiny_text)
    out = root / "out"
    result = _plan(str(scenario), *ARGS, "-o", str(out))
    assert result.exit_code == 0, result.output
    return scenario, out, result


def test_plan_writes_the_public_columns_one_row_per_candidate(planned):
    _, out, result = planned
    table = pd.read_parquet(out / "plan.parquet")
    assert list(table.columns) == list(COLUMNS)
    assert set(PUBLIC_COLUMNS) <= set(table.columns)
    assert len(table) == 4  # {H100-SXM, L4} × TP {1, 3} × bfloat16
    assert sorted(zip(table.gpu, table.tensor_parallel, strict=True)) == [
        ("H100-SXM", 1), ("H100-SXM", 3), ("L4", 1), ("L4", 3)]  # fmt: skip
    assert (table.weight_precision == "bfloat16").all()
    assert (table.target_rate_per_s == 6.0).all()
    # TP 3 divides neither 32 heads nor 8 KV heads: skipped, with the reason, never silently
    skipped = table[table.status == "skipped"]
    assert sorted(skipped.tensor_parallel) == [3, 3]
    assert skipped.note.str.contains("does not divide the 32 attention heads").all()
    assert "skipped H100-SXM TP3 bfloat16: deployment.tensor_parallel: 3" in result.output
    page = (out / "report.html").read_text()
    assert page.count('<img alt="plot" src="data:image/png;base64,') == 2  # embedded
    assert "Headroom: p99 vs load" in page
    assert "<script" not in page
    assert "http" not in page  # nothing fetched: viewable offline
    assert "Skipped (2)" in page


def test_the_cheapest_slo_meeting_candidate_ranks_first(planned):
    _, out, result = planned
    table = pd.read_parquet(out / "plan.parquet")
    best = table.iloc[0]
    assert best["rank"] == 1
    assert best.meets_slo
    assert best.gpu == "H100-SXM"
    assert best.replicas == 1
    assert best.replicas_probed == 1
    assert best.usd_per_hour == pytest.approx(2.49)
    assert best.ttft_p99_s <= 0.5
    assert best.tpot_p99_s <= 0.05
    assert best.headroom_rate_per_s >= 6.0
    assert best.pareto
    assert best.calibration == "roofline"  # the scenario's own
    met = table[table.meets_slo]
    assert list(met.usd_per_hour) == sorted(met.usd_per_hour)
    assert "answer: 1 × H100-SXM TP1 bfloat16 at $2.49/h" in result.output


def test_a_second_run_resumes_from_the_store_and_writes_the_same_plan(planned):
    scenario, out, _ = planned
    before = (out / "plan.parquet").read_bytes()
    points = ResultStore(out).stored_keys()
    again = _plan(str(scenario), *ARGS, "-o", str(out))
    assert again.exit_code == 0, again.output
    assert f"{len(points)} stored before, 0 run now" in again.output
    assert (out / "plan.parquet").read_bytes() == before
    assert ResultStore(out).stored_keys() == points
    assert ResultStore(out, create=False).manifest()["kind"] == "plan"


def test_bad_candidates_and_a_missing_slo_are_input_errors(planned, tmp_path: Path):
    scenario, _, _ = planned
    bad_gpu = _plan(str(scenario), "--gpu", "h1000", "-o", str(tmp_path / "a"))
    assert bad_gpu.exit_code == 2
    assert "--gpu h1000: unknown GPU" in bad_gpu.output
    assert "Traceback" not in bad_gpu.output
    bad_prec = _plan(str(scenario), "--weight-precision", "fp9", "-o", str(tmp_path / "b"))
    assert bad_prec.exit_code == 2
    assert "--weight-precision fp9: unknown precision" in bad_prec.output
    data = yaml.safe_load(scenario.read_text())
    del data["slo"]
    no_slo = tmp_path / "no-slo.yaml"
    no_slo.write_text(yaml.safe_dump(data))
    result = _plan(str(no_slo), "--gpu", "h100-sxm", "-o", str(tmp_path / "c"))
    assert result.exit_code == 2
    assert "no SLO: give --ttft-p99" in result.output


def test_a_process_pool_gives_the_same_plan_byte_for_byte(planned, tmp_path: Path):
    scenario, out, _ = planned
    args = [a if a != "serial" else "process" for a in ARGS]
    pooled = _plan(str(scenario), *args, "-j", "2", "-o", str(tmp_path / "pooled"))
    assert pooled.exit_code == 0, pooled.output
    assert "0 stored before" in pooled.output
    assert (tmp_path / "pooled" / "plan.parquet").read_bytes() == (
        out / "plan.parquet"
    ).read_bytes()


def test_the_answer_says_when_every_candidate_was_skipped() -> None:
    import pandas as pd

    from infsim.plan.main import answer_line

    skipped = pd.DataFrame({"meets_slo": [False], "status": ["skipped"], "calibration": ["-"]})
    assert answer_line(skipped, 8.0).startswith("answer: none: every candidate was skipped")
    missed = skipped.assign(status="searched")
    assert answer_line(missed, 8.0) == "answer: no candidate meets the SLO at 8 req/s"


def test_infsim_report_leaves_a_plans_own_report_alone(planned):
    _, out, _ = planned
    before = (out / "report.html").read_bytes()
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 2
    assert "an infsim plan directory" in result.output
    assert (out / "report.html").read_bytes() == before
