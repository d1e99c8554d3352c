"""The fitted sources `model_error` and `drift` (infsim/uncertainty/model_error.py,
validation/fit_model_error.py): the fit recovers a known σ, the shipped data is read and
checked, the draws are seeded and switchable, and with the sources off (or at σ = 0)
nothing changes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infsim import api
from infsim.errors import InputError
from infsim.scenario.load import load_scenario
from infsim.uncertainty import model_error as me
from infsim.uncertainty.model_error import (
    ModelError,
    draw_drift,
    draw_model_error,
    fit_sigma,
    fit_step_prefill,
)
from infsim.uncertainty.predict import IntervalOptions, uncertainty_sections
from infsim.uncertainty.replicate import ReplicationTask, simulate_task
from infsim.uncertainty.sources import SOURCES, class_sigmas, parse_sources

REPO = Path(__file__).resolve().parents[2]
TINY_LLAMA = REPO / "scenarios" / "vllm-cpu-tiny-llama.yaml"
sys.path.insert(0, str(REPO / "validation"))


# -- the fit ----------------------------------------------------------------------------
def test_fit_on_a_known_normal_sample_returns_its_sigma() -> None:
    x = np.random.default_rng(7).normal(0.0, 0.1, 4000)
    fit = fit_sigma(x)
    assert fit["sigma"] == pytest.approx(0.1, rel=0.04)
    assert fit["n"] == 4000
    assert abs(fit["mean"]) < 0.01


def test_fit_takes_out_the_measurement_noise_and_counts_a_bias_as_spread() -> None:
    x = np.random.default_rng(8).normal(0.0, 0.1, 4000)
    assert fit_sigma(x, noise_var=0.06**2)["sigma"] == pytest.approx(0.08, rel=0.05)
    assert fit_sigma(x, noise_var=1.0)["sigma"] == 0.0  # never negative
    biased = fit_sigma(x + 0.1)  # zero-centred: a bias of 0.1 widens σ to √2 · 0.1
    assert biased["sigma"] == pytest.approx(0.1 * np.sqrt(2), rel=0.05)
    with pytest.raises(InputError, match="at least 2"):
        fit_sigma([0.1])


def _cases(step, ttft_only, e_ttft, e_tpot, session_of=lambda i: f"s{i % 3}"):
    """Coverage-file rows with one measured value per case (no repeat noise to take out)."""
    cases = []
    for i in range(len(step)):
        for key, ratio, e in (
            ("tpot_p50", np.exp(step[i]), e_tpot[i]),
            ("ttft_p50", np.exp(step[i] + ttft_only[i]), e_ttft[i]),
        ):
            cases.append(
                {
                    "source": "live",
                    "session": session_of(i),
                    "case": f"c{i}",
                    "config": "as measured",
                    "key": key,
                    "point": 1.0,
                    "measured": [float(ratio)],
                    "prefill_elasticity": float(e),
                }
            )
    return cases  # fmt: skip


def test_joint_fit_recovers_known_step_and_prefill_sigmas() -> None:
    # Per case a step factor s and a prefill factor p; TPOT moves by s + e_tpot p, TTFT by
    # s + e_ttft p (log). The moment fit recovers both σ, and takes out the noise given.
    rng = np.random.default_rng(11)
    n = 4000
    s, p = rng.normal(0, 0.05, n), rng.normal(0, 0.2, n)
    e_tpot, e_ttft = rng.uniform(0, 0.4, n), rng.uniform(0.6, 1.2, n)
    noise = rng.normal(0, 0.03, (2, n))
    fit = fit_step_prefill(s + e_tpot * p + noise[0], np.full(n, 0.03**2), e_tpot,
                           s + e_ttft * p + noise[1], np.full(n, 0.03**2), e_ttft)  # fmt: skip
    assert fit["step"] == pytest.approx(0.05, rel=0.15)
    assert fit["prefill"] == pytest.approx(0.2, rel=0.05)
    assert fit["n"] == n
    # Residuals the other sources already explain leave nothing: σ never negative.
    quiet = fit_step_prefill(s * 0.1, np.full(n, 0.01), e_tpot, s * 0.1, np.full(n, 0.01),
                             e_ttft)  # fmt: skip
    assert quiet["step"] == quiet["prefill"] == 0.0
    with pytest.raises(InputError, match="at least 2"):
        fit_step_prefill([0.1], [0.0], [0.2], [0.1], [0.0], [1.0])


def test_fit_script_fits_step_and_prefill_together(tmp_path: Path) -> None:
    """The script's residuals (log ratios of TPOT and TTFT, elasticities) go into the joint
    fit unchanged; TPOT's own error is not counted a second time in the prefill factor, as
    sizing it on TTFT's residual minus TPOT's did (kept as `sigma_ttft_only`)."""
    import fit_model_error

    rng = np.random.default_rng(9)
    step, prefill = rng.normal(0, 0.1, 600), rng.normal(0, 0.2, 600)
    e_ttft, e_tpot = np.full(600, 1.0), np.full(600, 0.25)
    tpot = step + e_tpot * prefill
    ttft = rng.normal(0, 0.1, 600) + e_ttft * prefill  # a step error of its own
    cases = _cases(tpot, ttft - tpot, e_ttft, e_tpot)
    runs = tmp_path / "runs.csv"
    pd.DataFrame({"session": ["s0"] * 4, "run": ["r"] * 4, "server": ["b"] * 4,
                  "p50_tpot_ms": [10.0, 11.0, 9.5, 10.2]}).to_csv(runs, index=False)  # fmt: skip
    res = fit_model_error.residuals(pd.DataFrame(cases))
    fit = fit_model_error.fit_kind(res, fit_model_error.drift_deviations(pd.read_csv(runs)))
    direct = fit_step_prefill(tpot, np.zeros(600), e_tpot, ttft, np.zeros(600), e_ttft)
    assert fit["step"]["sigma"] == pytest.approx(direct["step"], rel=1e-9)
    assert fit["prefill"]["sigma"] == pytest.approx(direct["prefill"], rel=1e-9)
    assert fit["prefill"]["sigma"] == pytest.approx(0.2, rel=0.1)
    assert fit["prefill"]["sigma_ttft_only"] > 0.25  # the difference's σ: TPOT's error twice
    assert fit["drift"]["sigma"] > 0
    no_elasticity = pd.DataFrame(cases).drop(columns="prefill_elasticity")
    with pytest.raises(SystemExit, match="prefill_elasticity"):
        fit_model_error.residuals(no_elasticity)


def test_leave_one_group_out_fits_leave_the_group_out(tmp_path: Path) -> None:
    import fit_model_error

    rng = np.random.default_rng(10)
    step, prefill = rng.normal(0, 0.05, 30), rng.normal(0, 0.1, 30)
    prefill[:10] *= 5  # session s0's prefill error is far larger
    e_tpot, e_ttft = np.full(30, 0.2), np.full(30, 1.0)
    tpot, ttft = step + e_tpot * prefill, step + e_ttft * prefill
    cases = _cases(tpot, ttft - tpot, e_ttft, e_tpot, session_of=lambda i: f"s{i // 10}")
    cov = tmp_path / "cov.json"
    cov.write_text(json.dumps({"cases": cases, "replications": 0, "level": 0.9}))
    runs = tmp_path / "runs.csv"
    pd.DataFrame({"session": ["s0"] * 4, "run": ["r"] * 4, "server": ["b"] * 4,
                  "p50_tpot_ms": [10.0, 11.0, 9.5, 10.2]}).to_csv(runs, index=False)  # fmt: skip
    shipped_fit, leave_out = fit_model_error.fit(cov, runs)
    cpu = leave_out["groups"]["cpu"]
    rest = fit_step_prefill(tpot[10:], np.zeros(20), e_tpot[10:], ttft[10:], np.zeros(20),
                            e_ttft[10:])  # fmt: skip
    assert cpu["s0"]["prefill"]["sigma"] == pytest.approx(rest["prefill"], rel=1e-3)
    assert cpu["s0"]["prefill"]["sigma"] < shipped_fit["groups"]["cpu"]["prefill"]["sigma"]
    assert ModelError.from_dict(cpu["s1"], "t").prefill > cpu["s0"]["prefill"]["sigma"]


# -- the shipped data -------------------------------------------------------------------
def test_shipped_fit_is_read_per_device_kind_with_a_fallback() -> None:
    data = json.loads(me.FIT_FILE.read_text())
    cpu = me.shipped("cpu")
    assert cpu.step == data["groups"]["cpu"]["step"]["sigma"] >= 0
    assert cpu.drift > 0
    assert cpu.prefill == data["groups"]["cpu"]["prefill"]["sigma"] >= 0
    assert me.shipped("gpu").prefill == data["groups"]["gpu"]["prefill"]["sigma"] > 0
    assert me.shipped("gpu").drift == 0.0  # single-run residuals: no separate drift
    other = me.shipped("tpu")
    assert other.step == data["fallback"]["step"]["sigma"]
    assert "fallback" in other.origin
    rs, _ = api.prepare(load_scenario(TINY_LLAMA), TINY_LLAMA.parent)
    assert me.device_kind(rs) == "cpu"


def test_bad_sigmas_and_bad_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be a finite number"):
        ModelError(-0.1, 0.1, 0.1)
    bad = tmp_path / "bad.json"
    bad.write_text('{"groups": {"cpu": {"step": {}}}}')
    with pytest.raises(InputError, match="regenerate it"):
        me.shipped("cpu", bad)


# -- draws: seeded, switchable, σ = 0 is the plain run ----------------------------------
def test_draws_are_seeded_and_median_one() -> None:
    err = ModelError(0.1, 0.2, 0.05)
    a = draw_model_error(err, np.random.default_rng(1))
    assert a == draw_model_error(err, np.random.default_rng(1))
    assert a != draw_model_error(err, np.random.default_rng(2))
    many = [draw_drift(err, np.random.default_rng(s)) for s in range(400)]
    assert np.median(many) == pytest.approx(1.0, abs=0.02)
    assert draw_model_error(ModelError(0, 0, 0), np.random.default_rng(1)) == (1.0, 1.0)


def test_sources_are_named_and_switchable() -> None:
    assert {"model_error", "drift"} <= set(SOURCES) == set(parse_sources("all"))
    assert parse_sources("drift,model_error") == ("model_error", "drift")


def _task(sources, error=None, index=0):
    spec = load_scenario(TINY_LLAMA, ["workload.synthetic.num_requests=20"])
    return ReplicationTask(index, spec, str(TINY_LLAMA.parent), "t", sources,
                           class_sigmas(None), model_error=error)  # fmt: skip


def _run(task) -> str:
    summary = simulate_task(task)
    summary.get("simulation", {}).pop("wall_s", None)  # the one wall-clock field
    return json.dumps(summary, sort_keys=True)


def test_model_error_moves_a_replication_and_zero_sigma_does_not() -> None:
    plain = _run(_task(("speed_noise",)))
    zero = _run(_task(("speed_noise", "model_error", "drift"), ModelError(0, 0, 0)))
    assert zero == plain
    moved = _run(_task(("speed_noise", "model_error"), ModelError(0.3, 0.3, 0)))
    assert (
        json.loads(moved)["latency_s"]["tpot"]["p50"]
        != json.loads(plain)["latency_s"]["tpot"]["p50"]
    )
    assert _run(_task(("speed_noise", "model_error"), ModelError(0.3, 0.3, 0))) == moved


def test_the_prefill_factor_reaches_the_cost_hook_and_moves_ttft_more_than_tpot() -> None:
    from infsim.uncertainty.replicate import _fitted_factors, derived_seed

    task = _task(("model_error",), ModelError(0.0, 0.4, 0.0), index=3)
    resolved, _ = api.prepare(task.scenario, TINY_LLAMA.parent)
    multipliers, _ = _fitted_factors(task, resolved, None)
    rng = np.random.default_rng(derived_seed(task.scenario.seed, 3, "model_error"))
    _, prefill = draw_model_error(task.model_error, rng)
    assert prefill != 1.0
    assert multipliers.prefill == prefill
    assert (multipliers.dense, multipliers.attention, multipliers.overhead) == (1.0, 1.0, 1.0)
    plain = json.loads(_run(_task(("speed_noise",))))["latency_s"]
    moved = json.loads(_run(task))["latency_s"]
    ttft = abs(np.log(moved["ttft"]["p50"] / plain["ttft"]["p50"]))
    tpot = abs(np.log(moved["tpot"]["p50"] / plain["tpot"]["p50"]))
    assert ttft > 0.05
    assert ttft > 2 * tpot


def test_keys_and_summary_unchanged_without_the_fitted_sources() -> None:
    off = ("workload", "cost_model")
    assert _task(off).key == _task(off, ModelError(0.1, 0.1, 0.1)).key
    on = ("workload", "model_error")
    assert _task(on).key != _task(on, ModelError(0.1, 0.1, 0.1)).key
    spec = load_scenario(TINY_LLAMA, ["workload.synthetic.num_requests=20"])
    resolved, trace = api.prepare(spec, TINY_LLAMA.parent)
    base = api.run_resolved(resolved, trace).summary
    old = uncertainty_sections(spec, resolved, base, IntervalOptions(3, 0.9, off))["intervals"]
    assert set(old["sources"]) == {"workload", "speed_noise", "cost_model"}
    new = uncertainty_sections(spec, resolved, base, IntervalOptions(3, 0.9, SOURCES))["intervals"]
    assert new["sources"]["model_error"]["sigma"] == {
        "step": me.shipped("cpu").step,
        "prefill": me.shipped("cpu").prefill,
    }
    assert new["sources"]["drift"]["enabled"]


def test_drawn_sigma_inverts_the_prediction_interval() -> None:
    import fit_model_error

    from infsim.uncertainty.intervals import prediction_interval

    values = np.exp(np.random.default_rng(4).normal(0, 0.1, 10))
    lo, hi = prediction_interval(values, 0.9)
    sd = float(np.std(np.log(values), ddof=1))
    assert fit_model_error.drawn_sigma(lo, hi, 10, 0.9) == pytest.approx(sd, rel=1e-9)
