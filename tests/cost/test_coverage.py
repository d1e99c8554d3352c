"""No silent roofline: dtype substitution, head scaling, fallback warnings and the
`calibration.coverage` section of summary.json (infsim/cost/coverage.py)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from infsim import api
from infsim.catalog.hardware import load_gpu
from infsim.core.batch import batch_of
from infsim.cost import coverage
from infsim.cost.curves import geometric_grid
from infsim.cost.factory import build_cost_model, dtype_substitutes
from infsim.cost.lookup import CalibrationLookup, LookupLog
from infsim.cost.store import load_rows
from infsim.scenario.load import validate_scenario
from infsim.scenario.run import resolved_run
from infsim.sim.engine import simulate

REPO = Path(__file__).resolve().parents[2]
H100_TABLE = REPO / "calibration" / "h100-vllm-0.19"
ELEMENTWISE_WARNING = (
    "calibration h100-vllm-0.19: elementwise norms, rotary, activation, residual not in the "
    "table: priced by the roofline"
)


@pytest.fixture(scope="module")
def h100_rows():
    return load_rows(H100_TABLE)[0]


def _lookup(rows, substitutes: dict[str, str] | None = None) -> CalibrationLookup:
    return CalibrationLookup(rows, LookupLog(), 1, substitutes)


def _prepare(model: str = "llama-3.1-8b", calibration: str = str(H100_TABLE), **deployment):
    raw = {
        "model": model,
        "hardware": {"gpu": "h100-sxm"},
        "calibration": calibration,
        "deployment": deployment,
        "engine": {"max_num_seqs": 64, "max_num_batched_tokens": 2048, "max_model_len": 4096},
        "workload": {"synthetic": {
            "num_requests": 60, "arrival": {"kind": "poisson", "rate_per_s": 6},
            "prompt_tokens": {"kind": "lognormal", "mean": 600, "sigma": 0.8, "max": 3000},
            "output_tokens": {"kind": "lognormal", "mean": 80, "sigma": 0.7, "max": 600},
        }},
    }  # fmt: skip
    return api.prepare(validate_scenario(raw, "t.yaml"), ".")


def _gemm_roof(m, n, k):
    return np.maximum(2.0 * m * n * k / 989e12, (n * k * 2 + m * (n + k) * 2) / 3.35e12)


# -- 1. float16 from bfloat16 rows ---------------------------------------------------------
def test_h100_float16_and_bfloat16_substitute_each_other_and_unequal_rates_do_not():
    h100 = load_gpu("h100-sxm")
    assert dtype_substitutes(h100) == {"float16": "bfloat16", "bfloat16": "float16"}
    unequal = dataclasses.replace(
        h100, peak_flops_per_s={**h100.peak_flops_per_s, "float16": 500e12}
    )
    assert dtype_substitutes(unequal) == {}


def test_fp16_gemm_on_h100_is_priced_from_the_bf16_rows_exactly(h100_rows):
    grid = geometric_grid(1, 8192)
    subs = dtype_substitutes(load_gpu("h100-sxm"))
    for n, k in ((4096, 4096), (12288, 4096), (22016, 4096)):  # on and between grid shapes
        roof = _gemm_roof
        fp16 = _lookup(h100_rows, subs).gemm(n, k, "float16", grid, roof)
        bf16 = _lookup(h100_rows, subs).gemm(n, k, "bfloat16", grid, roof)
        np.testing.assert_array_equal(fp16.t_grid, bf16.t_grid)
        assert fp16.method == bf16.method != "roofline"
        assert (fp16.note, bf16.note) == ("float16 from bfloat16 rows", "")
        assert coverage.kind_of(fp16) == coverage.SCALED
        # without the substitution (rates differ): the roofline, as before
        assert _lookup(h100_rows).gemm(n, k, "float16", grid, roof).method == "roofline"


def test_fp16_deployment_prices_every_step_as_the_bf16_one_on_h100():
    (fp16, _), (bf16, _) = (
        _prepare(weight_precision=p, kv_cache_precision=p) for p in ("float16", "bfloat16")
    )
    log16, log_bf = LookupLog(), LookupLog()
    cm16, cm_bf = build_cost_model(fp16.replica(), log16), build_cost_model(bf16.replica(), log_bf)
    for chunks in ([(1, 700)] * 12, [(300, 0), (1, 2000), (1, 90)], [(2048, 0)]):
        batch = batch_of(chunks)
        assert cm16.step_time_s(batch) == cm_bf.step_time_s(batch)
    notes = {e["op"]: e["note"] for e in log16.entries}
    assert notes["attention_decode"] == "KV float16 from bfloat16 rows"
    assert all(e["method"] != "roofline" for e in log16.entries if e["op"] == "gemm")


# -- 2. attention heads scaled by bytes / FLOPs --------------------------------------------
def test_decode_attention_with_32_kv_heads_is_the_8_kv_head_rows_times_4(h100_rows):
    grid = geometric_grid(1, 32768)

    def roof(b, kv):
        return np.maximum(4.0 * b * kv * 32 * 128 / 989e12, b * kv * 2 * 32 * 128 * 2 / 3.35e12)

    lookup = _lookup(h100_rows)
    for batch in (1, 7, 64):  # on and between measured batch sizes
        mha = lookup.attention_decode((32, 32, 128), "bfloat16", batch, grid, roof)
        gqa = lookup.attention_decode((32, 8, 128), "bfloat16", batch, grid, roof)
        assert gqa.method in ("measured", "interpolated-shape")
        assert mha.method == "scaled-shape"
        assert mha.note == "×4 KV bytes of heads=32 kv_heads=8 head_dim=128"
        np.testing.assert_array_equal(mha.t_grid, 4 * gqa.t_grid)
        assert mha.measured == gqa.measured


def test_prefill_attention_of_an_unmeasured_head_count_is_scaled_by_flops(h100_rows):
    grid = geometric_grid(1, 8192)

    def roof(isl):
        return 4.0 * isl * (isl + 1) / 2 * 28 * 128 / 989e12

    lookup = _lookup(h100_rows)
    odd = lookup.attention_prefill((28, 4, 128), "bfloat16", grid, roof)  # no 28-head rows
    src = lookup.attention_prefill((32, 4, 128), "bfloat16", grid, roof)
    assert (odd.method, src.method) == ("scaled-shape", "measured")
    assert odd.note == "×0.875 FLOPs of heads=32 kv_heads=4 head_dim=128"
    np.testing.assert_array_equal(odd.t_grid, 0.875 * src.t_grid)


def test_llama2_7b_on_h100_has_calibrated_gemms_and_attention():
    rs, _ = _prepare("llama-2-7b")
    assert rs.scenario.deployment.weight_precision == "float16"
    log = LookupLog()
    build_cost_model(rs.replica(), log)
    methods = {e["op"]: e["method"] for e in log.entries}
    assert methods["attention_decode"] == "scaled-shape"
    assert methods["attention_prefill"] == "measured"
    roofline = [e["op"] for e in log.entries if e["method"] == "roofline"]
    assert roofline == ["elementwise"]  # the table has no per-token ops


# -- 3. coverage of the step time that ran -------------------------------------------------
def _run_coverage(rs, trace):
    with coverage.collecting() as collector:
        out = simulate(resolved_run(rs), trace)
    timeline = out.recorder.timeline_table()
    step_s = float(np.sum(timeline["end_s"].to_numpy() - timeline["start_s"].to_numpy()))
    return collector, out, step_s


def test_coverage_seconds_are_exactly_the_step_time_that_ran():
    rs, trace = _prepare()
    collector, out, step_s = _run_coverage(rs, trace)
    ((_, model),) = collector.models
    runs = out.recorder.decode_runs_by_width()
    ran = sum(steps for steps, _ in runs.values())
    assert sum(model.priced_run_steps.values()) > ran > 0  # runs were cut short: not counted
    seconds = model.coverage_s(runs)
    assert seconds.sum() == pytest.approx(step_s, rel=1e-12)
    assert seconds[coverage.ROOFLINE] > 0
    assert (seconds >= 0).all()


def test_summary_coverage_shares_with_a_known_fallback_sum_to_one():
    rs, trace = _prepare()
    section = api.run_resolved(rs, trace).summary["calibration"]
    assert section["name"] == "h100-vllm-0.19"
    shares = section["coverage"]
    assert list(shares) == ["measured", "interpolated", "scaled", "roofline"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert 0 < shares["roofline"] < 0.05  # the elementwise ops only
    assert shares["measured"] > 0
    assert shares["interpolated"] > 0
    assert 0 < section["overhead_fraction"] < 1
    assert section["roofline_lookups"] == ["elementwise norms, rotary, activation, residual"]


def test_fp16_model_coverage_is_scaled_where_it_was_roofline():
    rs, trace = _prepare("llama-2-7b")
    shares = api.run_resolved(rs, trace).summary["calibration"]["coverage"]
    assert shares["scaled"] > 0.9  # float16 from bfloat16 rows, 32 KV heads from 8
    assert 0 < shares["roofline"] < 0.05
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)


def test_unequal_rates_leave_fp16_gemms_to_the_roofline_in_the_coverage():
    rs, trace = _prepare("llama-2-7b")
    peaks = {**rs.gpu.peak_flops_per_s, "float16": rs.gpu.peak_flops_per_s["bfloat16"] / 2}
    rs = dataclasses.replace(rs, gpu=dataclasses.replace(rs.gpu, peak_flops_per_s=peaks))
    section = api.run_resolved(rs, trace).summary["calibration"]
    assert section["coverage"]["roofline"] > 0.5
    assert "gemm qkv_proj n=12288 k=4096 float16" in section["roofline_lookups"]


def test_roofline_cost_model_coverage_is_all_roofline():
    rs, trace = _prepare(calibration="roofline")
    section = api.run_resolved(rs, trace).summary["calibration"]
    assert section["name"] == "roofline"
    assert section["coverage"] == {"measured": 0.0, "interpolated": 0.0, "scaled": 0.0,
                                   "roofline": 1.0}  # fmt: skip


# -- 4. one warning line per fallback ------------------------------------------------------
def test_a_fallback_warns_once_per_process(monkeypatch, caplog):
    monkeypatch.setattr(coverage, "_warned", set())
    rs, _ = _prepare()
    caplog.set_level(logging.WARNING, logger="infsim.calibration")
    build_cost_model(rs.replica())  # outside a run: no warning
    assert caplog.messages == []
    for _ in range(3):  # three runs (or pools, or sweep points) in one process
        with coverage.collecting():
            build_cost_model(rs.replica())
    assert caplog.messages == [ELEMENTWISE_WARNING]
    assert "\n" not in caplog.messages[0]
