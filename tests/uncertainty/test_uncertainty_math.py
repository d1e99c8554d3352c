"""The pure parts of infsim.uncertainty: prediction intervals, nesting, elasticities, the
moving-block bootstrap, σ per op class. Exact values where the arithmetic is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from infsim.errors import InputError
from infsim.uncertainty.blocks import block_indices, resample_trace
from infsim.uncertainty.intervals import interval_section, lookup, prediction_interval
from infsim.uncertainty.sensitivity import elasticity, is_cliff, sensitivity_section
from infsim.uncertainty.sources import (
    MIN_SIGMA,
    ROOFLINE_SIGMA,
    SOURCES,
    class_sigmas,
    draw_multipliers,
    halfnormal_sigma,
    parse_sources,
)
from infsim.workload.trace import Trace

T_95_2DOF = 2.919985580  # Student t, 0.95 quantile, 2 degrees of freedom


# -- prediction intervals ---------------------------------------------------------------
def test_log_scale_interval_of_a_known_sample() -> None:
    # log values 1, 2, 3: mean 2, sd 1, N = 3 → 2 ± t · 1 · √(4/3)
    lo, hi = prediction_interval([math.e, math.e**2, math.e**3], 0.9)
    half = T_95_2DOF * math.sqrt(4 / 3)
    assert lo == pytest.approx(math.exp(2 - half), rel=1e-9)
    assert hi == pytest.approx(math.exp(2 + half), rel=1e-9)


def test_values_not_all_positive_use_the_linear_scale() -> None:
    lo, hi = prediction_interval([0.0, 1.0, 2.0], 0.9)
    half = T_95_2DOF * math.sqrt(4 / 3)
    assert (lo, hi) == (pytest.approx(1 - half), pytest.approx(1 + half))


def test_identical_values_give_a_zero_width_interval() -> None:
    assert prediction_interval([0.25] * 4, 0.9) == (pytest.approx(0.25), pytest.approx(0.25))


def test_too_few_values_give_no_interval_and_a_bad_level_is_refused() -> None:
    assert prediction_interval([1.0], 0.9) is None
    assert prediction_interval([1.0, None, float("nan")], 0.9) is None
    with pytest.raises(ValueError, match="level"):
        prediction_interval([1.0, 2.0], 1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.001, 1000.0), min_size=2, max_size=30))
def test_intervals_widen_with_level_and_hold_the_sample_centre(values: list[float]) -> None:
    narrow, mid, wide = (prediction_interval(values, lv) for lv in (0.5, 0.9, 0.99))
    assert wide[0] <= mid[0] <= narrow[0] <= narrow[1] <= mid[1] <= wide[1]
    centre = math.exp(np.mean(np.log(values)))  # the geometric mean: the log-scale centre
    assert mid[0] <= centre * (1 + 1e-9)
    assert centre <= mid[1] * (1 + 1e-9)


def test_interval_section_mirrors_the_summary_nesting() -> None:
    reps = [{"latency_s.ttft.p99": v, "cost.usd_per_hour": 2.0} for v in (1.0, 2.0, 4.0)]
    reps[1].pop("cost.usd_per_hour")  # missing in one replication: not counted
    out = interval_section(reps, ["latency_s.ttft.p99", "cost.usd_per_hour"], 0.9)
    assert set(out) == {"latency_s", "cost"}
    leaf = out["latency_s"]["ttft"]["p99"]
    assert set(leaf) == {"lo", "hi", "level", "num_replications"}
    assert leaf["num_replications"] == 3
    assert leaf["level"] == 0.9
    assert leaf["lo"] < 2.0 < leaf["hi"]
    assert out["cost"]["usd_per_hour"]["num_replications"] == 2
    assert lookup(out, "latency_s.ttft.p99") is leaf
    assert lookup(out, "latency_s.tpot.p99") is None


# -- cliff arithmetic -------------------------------------------------------------------
def test_elasticity_is_a_central_difference() -> None:
    assert elasticity(0.9, 1.0, 1.1) == pytest.approx(1.0)
    assert elasticity(1.0, 1.0, 3.0, step=0.1) == pytest.approx(10.0)
    assert elasticity(0.5, 0.0, 1.0) is None


def test_sensitivity_warns_only_beyond_twice() -> None:
    base = {"ttft": {"p99": 1.0}, "tpot": {"p99": 0.01}}
    runs = {
        "step_cost_minus": {"ttft": {"p99": 0.8}, "tpot": {"p99": 0.009}},
        "step_cost_plus": {"ttft": {"p99": 2.5}, "tpot": {"p99": 0.011}},
        "arrival_rate_minus": {"ttft": {"p99": 0.9}, "tpot": {"p99": 0.01}},
        "arrival_rate_plus": {"ttft": {"p99": 1.9}, "tpot": {"p99": 0.01}},
    }
    out = sensitivity_section(base, runs)
    assert out["cliff"] is True
    assert out["warnings"] == ["TTFT p99 changes 2.50× when step cost is +10%"]
    ttft = out["step_cost"]["ttft"]
    assert ttft["ratio_plus"] == pytest.approx(2.5)
    assert ttft["ratio_minus"] == pytest.approx(0.8)
    assert ttft["elasticity"] == pytest.approx((2.5 - 0.8) / 0.2)
    assert out["arrival_rate"]["ttft"]["elasticity"] == pytest.approx(5.0)
    assert out["step_cost"]["itl"]["elasticity"] is None  # no ITL in the runs
    assert is_cliff(0.49)
    assert not is_cliff(0.5)
    assert not is_cliff(None)


# -- moving-block bootstrap ---------------------------------------------------------------
class _Starts:
    """An rng stand-in whose uniform draws are given."""

    def __init__(self, starts: list[float]) -> None:
        self.starts = np.array(starts)

    def uniform(self, lo: float, hi: float, n: int) -> np.ndarray:
        assert n == len(self.starts)
        assert np.all((self.starts >= lo) & (self.starts <= hi))
        return self.starts


def test_block_bootstrap_on_a_known_sample() -> None:
    # arrivals 0..9 (span 9 + one mean gap = 10), 2 blocks of 5 s starting at 5 and 1
    arrivals = np.arange(10.0)
    idx, times = block_indices(arrivals, _Starts([5.0, 1.0]), num_blocks=2)
    assert idx.tolist() == [5, 6, 7, 8, 9, 1, 2, 3, 4, 5]
    assert times.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    # one block covering everything is the trace itself
    idx, times = block_indices(arrivals, np.random.default_rng(0), num_blocks=1)
    assert idx.tolist() == list(range(10))
    assert times.tolist() == arrivals.tolist()


def _trace(arrivals: list[float]) -> Trace:
    n = len(arrivals)
    return Trace.from_columns({"arrival_s": arrivals, "num_prompt_tokens": np.arange(1, n + 1),
                               "num_output_tokens": np.full(n, 7)})  # fmt: skip


def test_resampled_trace_is_valid_and_seeded() -> None:
    trace = _trace(sorted(np.random.default_rng(1).uniform(0, 100, 200).tolist()))
    a = resample_trace(trace, np.random.default_rng(5))
    b = resample_trace(trace, np.random.default_rng(5))
    assert a.table.equals(b.table)  # same seed, same replicate
    assert a.request_id.tolist() == list(range(a.num_requests))
    assert np.all(np.diff(a.arrival_s) >= 0)
    assert a.arrival_s[0] >= 0
    assert a.duration_s <= trace.duration_s * (1 + 1 / 199) + 1e-9
    assert set(a.num_prompt_tokens) <= set(trace.num_prompt_tokens)
    closed = resample_trace(_trace([0.0] * 5), np.random.default_rng(2))
    assert closed.num_requests == 5
    assert not closed.arrival_s.any()


# -- sources ----------------------------------------------------------------------------
def test_halfnormal_sigma_recovers_the_scale() -> None:
    sigma = 0.1
    med = math.expm1(sigma * stats.halfnorm.ppf(0.5))
    p95 = math.expm1(sigma * stats.halfnorm.ppf(0.95))
    assert halfnormal_sigma(med, p95) == pytest.approx(sigma)


def test_roofline_sigmas_and_seeded_draws() -> None:
    sig = class_sigmas(None)
    assert {s.sigma for s in sig.values()} == {ROOFLINE_SIGMA}
    a = draw_multipliers(sig, np.random.default_rng(3))
    assert a == draw_multipliers(sig, np.random.default_rng(3))
    assert a != draw_multipliers(sig, np.random.default_rng(4))


def test_a_calibration_table_gives_its_own_sigmas() -> None:
    from pathlib import Path

    from infsim.scenario.load import load_scenario
    from infsim.scenario.resolve import resolve

    path = Path(__file__).resolve().parents[2] / "scenarios" / "vllm-cpu-tiny-llama.yaml"
    rs = resolve(load_scenario(path), path.parent)
    sig = class_sigmas(rs.calibration_rows)
    assert "gemm" in sig["dense"].origin
    assert "attention" in sig["attention"].origin
    assert MIN_SIGMA <= sig["dense"].sigma < ROOFLINE_SIGMA  # a measured table is tighter


def test_sources_are_parsed_or_refused_by_name() -> None:
    assert parse_sources(None) == SOURCES == parse_sources("all")
    assert parse_sources("cost_model, workload") == ("workload", "cost_model")
    with pytest.raises(InputError, match=r"--interval-sources 'wrkload'.*allowed"):
        parse_sources("wrkload")
