"""Step overhead fitted by replaying open-loop runs (`infsim.calibration.replay_fit`)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from infsim import api
from infsim.calibration.frontend import without_frontend
from infsim.calibration.replay_fit import decode_exposure, theta_rows
from infsim.cli import main
from infsim.cost.overhead import fit_overhead
from infsim.cost.table import read
from infsim.metrics.recorder import TIMELINE_SCHEMA
from infsim.workload.trace import Trace

REPO = Path(__file__).resolve().parents[2]
# validation/live_store.py (the live runs in compact form; validation/ is not a package)
_spec = importlib.util.spec_from_file_location("live_store", REPO / "validation" / "live_store.py")
live_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(live_store)


def test_exposure_counts_each_requests_decode_steps_exactly() -> None:
    names = TIMELINE_SCHEMA.names
    # replica, start, end, steps, batched, running, ..., num_seqs
    rows = [(0, 0.0, 1.0, 1, 300, 2, 0, 0, 0, 0.0, 0, 0, 2),  # a prefill of 299 + 1 decode
            (0, 1.0, 4.0, 3, 2, 2, 0, 0, 0, 0.0, 0, 0, 2),  # a run of 3 decode steps
            (1, 0.0, 2.0, 1, 1, 1, 0, 0, 0, 0.0, 0, 0, 1),
            (0, 4.0, 5.0, 1, 1, 1, 0, 0, 0, 0.0, 0, 0, 1)]  # fmt: skip
    timeline = pa.table(dict(zip(names, zip(*rows, strict=True), strict=True)),
                        schema=TIMELINE_SCHEMA)  # fmt: skip
    requests = pd.DataFrame({"replica_id": [0, 0, 1], "first_token_s": [0.0, 1.0, 0.0],
                             "finish_s": [5.0, 4.0, 2.0]})  # fmt: skip
    exp = decode_exposure(requests, timeline)
    assert exp.steps.tolist() == [5, 3, 1]
    assert exp.seq_steps.tolist() == [2 + 6 + 1, 6, 1]
    assert exp.prefill_tokens.tolist() == [298, 0, 0]
    assert exp.decode_s.tolist() == [5.0, 3.0, 2.0]


def test_theta_rows_fit_back_to_theta() -> None:
    theta = {"fixed_s": 2e-3, "per_seq_s": 40e-6, "per_prefill_token_s": 1e-6}
    fit = fit_overhead(theta_rows(theta, (300, 800)))
    assert fit.fixed_s == pytest.approx(2e-3)
    assert fit.per_seq_s == pytest.approx(40e-6)
    assert fit.per_prefill_token_s == pytest.approx(1e-6)
    assert fit.per_prefill_seq_s == pytest.approx(-1e-6)  # the chunk's first token is a seq


def _open_loop_truth(scenario: Path, theta: dict[str, float], path: Path) -> Path:
    """A vLLM-bench result of an open-loop run served by the simulator itself with a
    known overhead `theta` (no front end, so TTFT and E2E end on step boundaries)."""
    resolved, _ = api.prepare(api.load_scenario(scenario), scenario.parent)
    ops = resolved.calibration_rows
    ops = ops[ops["op"] != "step_overhead"]
    truth = dataclasses.replace(
        without_frontend(resolved),
        calibration_rows=pd.concat([ops, theta_rows(theta, (300, 800))], ignore_index=True),
    )
    rng = np.random.default_rng(7)
    n = 150
    arrival = np.cumsum(rng.exponential(1 / 6.0, n))
    trace = Trace.from_columns({"arrival_s": arrival,
                                "num_prompt_tokens": rng.integers(100, 1200, n),
                                "num_output_tokens": rng.integers(20, 200, n)},
                               source="truth")  # fmt: skip
    req = api.run_resolved(truth, trace).requests.to_pandas().sort_values("request_id")
    assert (req["status"] == "finished").all()
    out = req["num_output_tokens"].to_list()
    data = {
        "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B", "num_prompts": n,
        "request_rate": 6.0, "max_concurrency": None, "duration": float(req["finish_s"].max()),
        "completed": n, "failed": 0, "input_lens": req["num_prompt_tokens"].to_list(),
        "output_lens": out, "ttfts": req["ttft_s"].to_list(),
        "latencies": req["e2e_s"].to_list(), "itls": [[0.01] * (o - 1) for o in out],
        "start_times": (1000.0 + req["arrival_s"]).to_list(), "errors": [""] * n,
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_an_open_loop_run_gives_back_the_overhead_it_was_served_with(
    tmp_path: Path, rtx4090_setup
) -> None:
    _, scenario = rtx4090_setup
    truth = {"fixed_s": 2e-3, "per_seq_s": 40e-6, "per_prefill_token_s": 1e-6}
    bench = _open_loop_truth(scenario, truth, tmp_path / "open.json")
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(bench), "--scenario",
                                       str(scenario), "-o", str(tmp_path / "fit")])  # fmt: skip
    assert result.exit_code == 0, result.output
    table, meta = read(tmp_path / "fit")
    rows = table.to_pandas()
    fit = fit_overhead(rows[rows["op"] == "step_overhead"])
    assert fit.fixed_s == pytest.approx(truth["fixed_s"], rel=0.05)
    assert fit.per_seq_s == pytest.approx(truth["per_seq_s"], rel=0.10)
    # The prefill term is the weakest: batches change in steps as the terms move.
    assert fit.per_prefill_token_s == pytest.approx(truth["per_prefill_token_s"], rel=0.25)
    assert meta.provenance[-1].path == str(bench)
    assert set(rows.loc[rows["op"] == "step_overhead", "variant"]) == {"fitted-replay"}


@pytest.mark.skipif("rep12" not in live_store.reps("near"), reason="live runs not here")
def test_a_live_open_loop_run_fits(tmp_path: Path) -> None:
    """The live vLLM (CPU) `near` run, Poisson arrivals: the fit runs end to end and lands
    in the range the closed-loop fits of the same engine give (4.5-6.5 ms per step)."""
    bench = live_store.materialise("near", "rep12", tmp_path / "live")  # its result.json
    scenario = REPO / "scenarios/vllm-cpu-tiny-llama.yaml"
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(bench), "--scenario",
                                       str(scenario), "-o", str(tmp_path / "fit")])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read(tmp_path / "fit")[0].to_pandas()
    fit = fit_overhead(rows[rows["op"] == "step_overhead"])
    assert 4e-3 < fit.fixed_s + 4 * fit.per_seq_s < 9e-3
