"""`infsim calibrate noise`: the speed-noise estimate recovers the cv and correlation time
that produced simulated one-in-flight runs, and refuses runs it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from infsim import api
from infsim.cli import main
from infsim.scenario.load import validate_scenario
from infsim.workload.trace import Trace


class _Constant:
    def step_time_s(self, batch) -> float:
        return 0.01

    def decode_run_times_s(self, num_seqs: int, sum_context_tokens: int, k: int) -> list[float]:
        return [0.01] * k

    def op_times_s(self, batch) -> dict[str, float]:
        return {"overhead": 0.01}


def _simulated_bench(path: Path, seed: int, cv: float, correlation_s: float, n: int) -> Path:
    """A vLLM bench JSON of n requests at one in flight (128 in / 101 out) on a host whose
    speed swings with (cv, correlation_s): decode D = 1 s per request."""
    scenario = validate_scenario({
        "name": "noise", "seed": seed, "model": "llama-3.1-8b", "hardware": {
            "gpu": "h100-sxm", "speed_noise": {"cv": cv, "correlation_s": correlation_s}},
        "workload": {"synthetic": {"num_requests": 1, "arrival": {"kind": "poisson",
                     "rate_per_s": 1}, "prompt_tokens": {"kind": "fixed", "value": 8},
                     "output_tokens": {"kind": "fixed", "value": 1}}, "max_concurrency": 1},
    }, "noise")  # fmt: skip
    trace = Trace.from_columns({"request_id": list(range(n)), "arrival_s": [0.0] * n,
                                "num_prompt_tokens": [128] * n,
                                "num_output_tokens": [101] * n})  # fmt: skip
    resolved, _ = api.prepare(scenario, ".")
    rows = api.run_resolved(resolved, trace).requests.to_pylist()
    data = {
        "date": "20261123-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B",
        "tokenizer_id": "meta-llama/Llama-3.1-8B", "num_prompts": n, "request_rate": "inf",
        "max_concurrency": 1, "duration": rows[-1]["finish_s"], "completed": n, "failed": 0,
        "input_lens": [128] * n, "output_lens": [101] * n,
        "ttfts": [r["ttft_s"] for r in rows], "latencies": [r["e2e_s"] for r in rows],
        "itls": [[r["tpot_s"]] * 100 for r in rows],
        "start_times": [100.0 + r["arrival_s"] for r in rows], "errors": [""] * n,
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("cv", "correlation_s"), [(0.15, 0.3), (0.3, 0.6)])
def test_the_estimate_recovers_the_noise_that_made_the_runs(tmp_path, monkeypatch, cv,
                                                             correlation_s):  # fmt: skip
    monkeypatch.setattr("infsim.sim.engine.build_cost_model", lambda _r: _Constant())
    benches = [_simulated_bench(tmp_path / f"r{s}.json", s, cv, correlation_s, 60)
               for s in range(9)]  # fmt: skip
    out = CliRunner().invoke(main, ["calibrate", "noise", "--json", *map(str, benches)])
    assert out.exit_code == 0, out.output
    est = json.loads(out.output)
    assert est["cv"] == pytest.approx(cv, rel=0.3)
    assert est["correlation_s"] == pytest.approx(correlation_s, rel=0.5)
    assert np.mean([r["decode_s"] for r in est["runs"]]) == pytest.approx(1.0, rel=0.02)


def test_runs_with_more_than_one_in_flight_are_refused(tmp_path):
    bench = tmp_path / "c4.json"
    n = 10
    bench.write_text(json.dumps({
        "date": "20261123-120000", "backend": "vllm", "model_id": "m", "tokenizer_id": "m",
        "num_prompts": n, "request_rate": "inf", "max_concurrency": 4, "duration": 9.0,
        "completed": n, "failed": 0, "input_lens": [128] * n, "output_lens": [32] * n,
        "ttfts": [0.05] * n, "latencies": [0.4] * n, "itls": [[0.01] * 31] * n,
        "start_times": [float(i) for i in range(n)], "errors": [""] * n,
    }))  # fmt: skip
    out = CliRunner().invoke(main, ["calibrate", "noise", str(bench)])
    assert out.exit_code == 2
    assert "one request in flight" in out.output
