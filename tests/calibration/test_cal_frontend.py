"""`infsim calibrate frontend`: TTFT residuals of unqueued live requests become frontend
rows, and the calibrated cost model adds fixed + per-prompt-token latency to each request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from infsim import api
from infsim.calibration.frontend import engine_ttft
from infsim.cli import main
from infsim.cost.table import read
from infsim.frontend.costs import fitted_request_path
from infsim.scenario.load import load_scenario

PROMPTS = [100, 400, 1600, 800]


def _bench(path: Path, ttfts: list[float], max_concurrency: int | None = 1) -> Path:
    n = len(ttfts)
    data = {
        "date": "20261123-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B",
        "tokenizer_id": "meta-llama/Llama-3.1-8B", "num_prompts": n, "request_rate": "inf",
        "max_concurrency": max_concurrency, "duration": 9.0, "completed": n, "failed": 0,
        "input_lens": PROMPTS[:n], "output_lens": [4] * n, "ttfts": ttfts,
        "itls": [[0.02, 0.02, 0.02]] * n, "latencies": [t + 0.06 for t in ttfts],
        "start_times": [100.0 + 2 * i for i in range(n)], "errors": [""] * n,
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_frontend_fit_recovers_a_known_line_and_the_model_applies_it(tmp_path: Path, rtx4090_setup):
    cal, scenario = rtx4090_setup
    resolved, _ = api.prepare(load_scenario(scenario), tmp_path)
    # The engine's own TTFT per request (front end off): residuals of a zero-TTFT bench.
    # (The copied table has no frontend rows yet: this is the engine alone.)
    _, predicted = engine_ttft(_bench(tmp_path / "zero.json", [0.0] * 4), resolved)
    engine = predicted.tolist()
    # "Measured" = engine + 4 ms + 2 µs per prompt token.
    measured = [t + 4e-3 + 2e-6 * p for t, p in zip(engine, PROMPTS, strict=True)]
    bench = _bench(tmp_path / "c1.json", measured)
    out = CliRunner().invoke(main, ["calibrate", "frontend", str(bench),
                                    "--scenario", str(scenario)])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "4 frontend rows; fit 4.000 ms + 2.000 µs per prompt token" in out.output
    table, meta = read(cal)
    assert table.to_pandas()["op"].eq("frontend").sum() == 4
    assert any(n.startswith("frontend:") for n in meta.notes)
    resolved, _ = api.prepare(load_scenario(scenario), tmp_path)
    fixed_s, per_token_s = fitted_request_path(resolved.calibration_rows)
    assert fixed_s + 1000 * per_token_s == pytest.approx(6e-3)
    # Refitting replaces the rows instead of stacking them.
    out = CliRunner().invoke(main, ["calibrate", "frontend", str(bench),
                                    "--scenario", str(scenario)])  # fmt: skip
    assert read(cal)[0].to_pandas()["op"].eq("frontend").sum() == 4


def test_queued_runs_are_refused(tmp_path: Path, rtx4090_setup):
    _, scenario = rtx4090_setup
    bench = _bench(tmp_path / "c4.json", [0.1] * 4, max_concurrency=4)
    out = CliRunner().invoke(main, ["calibrate", "frontend", str(bench),
                                    "--scenario", str(scenario)])  # fmt: skip
    assert out.exit_code == 2
    assert "one request in flight" in out.output


def test_roofline_has_no_frontend(tmp_path: Path, rtx4090_setup):
    _, scenario = rtx4090_setup
    spec = load_scenario(scenario, ["calibration=roofline"])
    resolved, _ = api.prepare(spec, tmp_path)
    assert fitted_request_path(resolved.calibration_rows) is None
