"""Candidates, the SLO, the target rate and the calibration each candidate is priced with."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.plan import candidates as cand
from infsim.scenario.schema import SLOSpec
from infsim.sweep.points import PointContext
from infsim.sweep.search import SLOTarget


def _ctx(**raw) -> PointContext:
    return PointContext(raw, Path("."), "s.yaml")


def test_lists_accept_repeats_commas_and_aliases():
    assert cand.gpu_list(["h100-sxm,h200", "H100_SXM"]) == ["H100-SXM", "H200"]
    assert "cpu-host" not in cand.gpu_list([])  # default: every catalog GPU, no CPU
    assert cand.precision_list(["bf16,fp8", "auto"], "bfloat16") == ["bfloat16", "fp8"]
    assert cand.tp_list([]) == [1, 2, 4, 8]
    assert cand.tp_list(["4,2", "8", "4"]) == [2, 4, 8]
    with pytest.raises(InputError, match=r"--tensor-parallel .0.: not allowed"):
        cand.tp_list(["0"])
    assert len(cand.expand(["H100-SXM", "L4"], [1, 2], ["fp8"])) == 4


def test_the_slo_comes_from_options_else_the_scenario_as_p99_limits():
    target, text = cand.slo_target(SLOSpec(ttft_s=1.0, tpot_s=0.05), None, 0.04, None)
    assert target == SLOTarget(ttft_p99_s=1.0, tpot_p99_s=0.04)
    assert text == "p99 TTFT ≤ 1 s (slo.ttft_s) and p99 TPOT ≤ 0.04 s (--tpot-p99)"
    with pytest.raises(InputError, match="no SLO"):
        cand.slo_target(SLOSpec(), None, None, None)
    alone, text = cand.slo_target(SLOSpec(ttft_s=1.0), None, None, None, 0.99)
    assert alone == SLOTarget(min_attainment=0.99)  # capacity's reading of slo:
    assert text == "≥ 99.0% of requests meet every slo: threshold (--min-attainment)"
    both, _ = cand.slo_target(SLOSpec(ttft_s=1.0), 2.0, None, None, 0.9)
    assert both == SLOTarget(ttft_p99_s=2.0, min_attainment=0.9)


def test_the_target_rate_replaces_the_scenario_scaling_and_says_so():
    ctx, notes = cand.with_target_rate(_ctx(workload={"rate_scale": 2, "synthetic": {}}), 10.0)
    assert ctx.base_raw["workload"] == {"synthetic": {}, "target_rate_per_s": 10.0}
    assert notes == ["workload.rate_scale: 2 replaced by target_rate_per_s 10"]


def test_a_named_table_prices_its_own_gpu_and_auto_the_others():
    ctx = _ctx(calibration="h100-vllm-0.19")
    cands = cand.expand(["H100-SXM", "L4"], [1], ["bfloat16"])
    out, line = cand.calibration_policy(ctx, cands)
    assert [c.calibration for c in out] == [None, "auto"]
    assert "calibration: auto for L4" in line
    same, line = cand.calibration_policy(ctx, cands[:1])
    assert same == cands[:1]
    assert line == "calibration: h100-vllm-0.19 (the scenario's, measured on H100-SXM)"


def test_fleets_with_pools_or_autoscaling_are_refused():
    with pytest.raises(InputError, match=r"deployment\.pools"):
        cand.check_base(_ctx(deployment={"pools": [{"name": "a"}]}))
    with pytest.raises(InputError, match="autoscaling"):
        cand.check_base(_ctx(autoscaling={"kind": "x"}))
