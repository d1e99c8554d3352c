"""`infsim calibrate overhead`: residuals of measured steps become step_overhead rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from infsim import api
from infsim.calibration.overhead import decode_batch, steps_from_bench
from infsim.cli import main
from infsim.cost.factory import build_cost_model
from infsim.cost.table import read
from infsim.scenario.load import load_scenario


def test_overhead_fit_recovers_a_known_line(tmp_path: Path, rtx4090_setup):
    cal, scenario = rtx4090_setup
    resolved, _ = api.prepare(load_scenario(scenario), tmp_path)
    cm = build_cost_model(resolved.replica())
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


def _closed_loop_bench(path: Path, *, concurrency: int | None, prompt: list[int],
                       output: list[int], tpot_s: list[float]) -> Path:  # fmt: skip
    n = len(prompt)
    ttft = [0.05] * n
    data = {
        "date": "20261123-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B",
        "tokenizer_id": "meta-llama/Llama-3.1-8B", "num_prompts": n, "request_rate": "inf",
        "max_concurrency": concurrency, "duration": 9.0, "completed": n, "failed": 0,
        "input_lens": prompt, "output_lens": output, "ttfts": ttft,
        "itls": [[t] * (o - 1) for t, o in zip(tpot_s, output, strict=True)],
        "latencies": [f + t * (o - 1) for f, t, o in zip(ttft, tpot_s, output, strict=True)],
        "start_times": [100.0 + i for i in range(n)], "errors": [""] * n,
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_a_closed_loop_bench_is_one_step_at_its_concurrency(tmp_path: Path):
    bench = _closed_loop_bench(tmp_path / "c4.json", concurrency=4, prompt=[512] * 6,
                               output=[129] * 6, tpot_s=[0.010, 0.011, 0.012, 0.013, 0.030,
                                                         0.009])  # fmt: skip
    steps = steps_from_bench(bench)
    assert steps.to_dict("records") == [
        {"batch_size": 4.0, "kv_len": 512 + 129 / 2, "step_time_s": pytest.approx(0.0115)}
    ]
    # Fewer requests than the limit: they are the whole batch.
    few = _closed_loop_bench(tmp_path / "c8.json", concurrency=8, prompt=[128] * 3,
                             output=[65] * 3, tpot_s=[0.02] * 3)  # fmt: skip
    assert steps_from_bench(few)["batch_size"].tolist() == [3.0]


def test_overhead_fit_from_benches_equals_the_fit_from_their_csv(tmp_path: Path, rtx4090_setup):
    _, scenario = rtx4090_setup
    benches = [
        _closed_loop_bench(tmp_path / f"c{c}.json", concurrency=c, prompt=[256] * 2 * c,
                           output=[33] * 2 * c, tpot_s=[t] * 2 * c)
        for c, t in ((1, 0.030), (4, 0.033), (16, 0.040))
    ]  # fmt: skip
    csv = tmp_path / "steps.csv"
    pd.concat([steps_from_bench(b) for b in benches]).to_csv(csv, index=False)
    runner = CliRunner()
    out_csv = runner.invoke(main, ["calibrate", "overhead", str(csv), "--scenario",
                                   str(scenario), "-o", str(tmp_path / "a")])  # fmt: skip
    out_json = runner.invoke(main, ["calibrate", "overhead", *map(str, benches), "--scenario",
                                    str(scenario), "-o", str(tmp_path / "b")])  # fmt: skip
    assert out_csv.exit_code == 0, out_csv.output
    assert out_json.exit_code == 0, out_json.output
    assert out_csv.output.split("rows;")[1] == out_json.output.split("rows;")[1]
    assert "3 step_overhead rows" in out_json.output
    meta = read(tmp_path / "b")[1]
    assert [p.path for p in meta.provenance[-3:]] == [str(b) for b in benches]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # Not a closed loop with fixed lengths: fitted by replay, which needs 3 requests.
        ({"concurrency": None}, "only 2 replayed requests decoded more than one token"),
        ({"prompt": [128, 512]}, "only 2 replayed requests decoded more than one token"),
        ({"output": [1, 1]}, "no decode steps"),
    ],
)
def test_benches_that_do_not_measure_one_step_are_refused(tmp_path: Path, rtx4090_setup,
                                                          kwargs, message):  # fmt: skip
    _, scenario = rtx4090_setup
    args = {"concurrency": 2, "prompt": [128, 128], "output": [64, 64], "tpot_s": [0.01] * 2}
    bench = _closed_loop_bench(tmp_path / "b.json", **{**args, **kwargs})
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(bench),
                                       "--scenario", str(scenario)])  # fmt: skip
    assert result.exit_code == 2
    assert message in result.output


def test_a_refit_replaces_the_provenance_of_the_previous_fit(tmp_path: Path, rtx4090_setup):
    cal, scenario = rtx4090_setup
    before = {p.path for p in read(cal)[1].provenance}
    runner = CliRunner()
    for name, t in (("first.csv", 0.040), ("second.csv", 0.041)):
        steps = tmp_path / name
        pd.DataFrame([{"batch_size": b, "kv_len": 300, "step_time_s": t + 1e-3 * b}
                      for b in (1, 8)]).to_csv(steps, index=False)  # fmt: skip
        result = runner.invoke(main, ["calibrate", "overhead", str(steps),
                                      "--scenario", str(scenario)])  # fmt: skip
        assert result.exit_code == 0, result.output
    provenance = read(cal)[1].provenance
    assert {p.path for p in provenance} == before | {str(tmp_path / "second.csv")}
    assert [p.op for p in provenance if p.path not in before] == ["step_overhead"]
