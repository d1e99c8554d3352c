"""`infsim calibrate overhead`: residuals of measured steps become step_overhead rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from infsim import api
from infsim.calibration.overhead import decode_batch
from infsim.calibration.table import read
from infsim.cli import main
from infsim.cost.factory import build_cost_model
from infsim.scenario.load import load_scenario


def test_overhead_fit_recovers_a_known_line(tmp_path: Path, rtx4090_setup):
    cal, scenario = rtx4090_setup
    resolved, _ = api.prepare(load_scenario(scenario), tmp_path)
    cm = build_cost_model(resolved)
    # "Measure" steps = the table's ops + 3 ms + 20 µs per sequence.
    rows = []
    for b, kv in ((1, 500), (4, 800), (16, 1000), (32, 300)):
        ops = cm.op_times_s(decode_batch(b, kv))
        true = sum(v for k, v in ops.items() if k != "overhead") + 3e-3 + 20e-6 * b
        rows.append({"batch_size": b, "kv_len": kv, "step_time_s": true})
    measured = tmp_path / "steps.csv"
    pd.DataFrame(rows).to_csv(measured, index=False)
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(measured),
                                       "--scenario", str(scenario)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fit 3.000 ms + 20.0 µs per sequence" in result.output
    table, meta = read(cal)
    assert table.to_pandas()["op"].eq("step_overhead").sum() == 4
    assert any(n.startswith("step_overhead:") for n in meta.notes)
    assert meta.provenance[-1].path == str(measured)


def test_measured_steps_faster_than_the_ops_are_refused(tmp_path: Path, rtx4090_setup):
    _, scenario = rtx4090_setup
    measured = tmp_path / "steps.csv"
    measured.write_text("batch_size,kv_len,step_time_s\n1,100,0.000001\n")
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(measured),
                                       "--scenario", str(scenario)])  # fmt: skip
    assert result.exit_code == 2
    assert "exceed a measured step" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batch_size,step_time_s\n1,0.01\n", "missing column"),
        ("batch_size,kv_len,step_time_s\n1,100,-1\n", "row 2"),
    ],
)
def test_bad_measurement_files(tmp_path: Path, text: str, message: str, rtx4090_setup):
    _, scenario = rtx4090_setup
    measured = tmp_path / "steps.csv"
    measured.write_text(text)
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(measured),
                                       "--scenario", str(scenario)])  # fmt: skip
    assert result.exit_code == 2
    assert message in result.output
