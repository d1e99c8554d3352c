"""The calibrated cost model against synthetic tables with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infsim import api
from infsim.calibration.fit_quality import leave_one_out, report
from infsim.core.batch import batch_of
from infsim.cost.factory import build_cost_model
from infsim.cost.lookup import LookupLog
from infsim.cost.table import CalibrationMeta, read, to_table, write
from infsim.errors import InputError
from infsim.scenario.load import validate_scenario

MS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
NS = [1024, 2048, 4096, 8192, 16384, 32768]


def _gemm_time(m, n, k):
    """A smooth synthetic 'device': 1 TFLOP/s-ish compute, 1 TB/s-ish memory, 5 µs floor."""
    return 5e-6 + np.maximum(2.0 * m * n * k / 4e14, (n * k * 2 + m * (n + k) * 2) / 2e12)


def _synthetic_calibration(directory: Path, device: str = "H100-SXM") -> Path:
    rows = [
        {"op": "gemm", "dtype": "bfloat16", "m": m, "n": n, "k": k,
         "time_s": float(_gemm_time(m, n, k))}
        for m in MS for n in NS for k in NS
    ]  # fmt: skip
    for b in (1, 4, 16, 64, 256):
        for kv in (2**i for i in range(4, 17)):
            t = 3e-6 + b * kv * 2 * 8 * 128 * 2 / 2e12
            rows.append({"op": "attention_decode", "dtype": "bfloat16", "kv_dtype": "bfloat16",
                         "batch_size": b, "kv_len": kv, "num_heads": 32, "num_kv_heads": 8,
                         "head_dim": 128, "time_s": t})  # fmt: skip
    for isl in (2**i for i in range(4, 16)):
        t = 4e-6 + 4.0 * isl * (isl + 1) / 2 * 32 * 128 / 4e14
        rows.append({"op": "attention_prefill", "dtype": "bfloat16", "kv_dtype": "bfloat16",
                     "batch_size": 1, "query_len": isl, "kv_len": isl, "num_heads": 32,
                     "num_kv_heads": 8, "head_dim": 128, "time_s": t})  # fmt: skip
    meta = CalibrationMeta(name="synthetic", device=device, engine="vllm", source="test",
                           profiler="formula", importer="test")  # fmt: skip
    write(directory, to_table(pd.DataFrame(rows), "synthetic"), meta)
    return directory


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _synthetic_calibration(tmp_path_factory.mktemp("cal") / "synthetic")


def _resolved(calibration: Path, **sections):
    raw = {
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "calibration": str(calibration),
        "workload": {"synthetic": {
            "num_requests": 200, "arrival": {"kind": "poisson", "rate_per_s": 10},
            "prompt_tokens": {"kind": "lognormal", "mean": 800, "sigma": 0.8, "max": 8000},
            "output_tokens": {"kind": "lognormal", "mean": 150, "sigma": 0.7, "max": 1000},
        }},
        "engine": {"max_num_seqs": 256, "max_num_batched_tokens": 8192},
        **sections,
    }  # fmt: skip
    return api.prepare(validate_scenario(raw, "t.yaml"), ".")


_batch = batch_of


def test_gemm_lookup_reproduces_the_device_on_and_between_grid_shapes(calibration: Path):
    rs, _ = _resolved(calibration)
    log = LookupLog()
    cm = build_cost_model(rs.replica(), log)
    methods = {e["shape"].split()[0]: e["method"] for e in log.entries if e["op"] == "gemm"}
    # o_proj (4096 x 4096) is a measured shape; the others fall between grid shapes.
    assert methods == {
        "qkv_proj": "interpolated-shape",
        "o_proj": "measured",
        "gate_up_proj": "interpolated-shape",
        "down_proj": "interpolated-shape",
    }
    # qkv (6144 x 4096) and gate_up (28672 x 4096) are between grid shapes; the curve must
    # still be within a few % of the synthetic device at measured and unmeasured m.
    for name, (n, k) in {"qkv": (6144, 4096), "gate_up": (28672, 4096)}.items():
        curve = cm.lookup.gemm(n, k, "bfloat16", cm._t_grid, cm._gemm_roof)
        for m in (1, 3, 100, 700, 5000):
            expected = _gemm_time(m, n, k)
            assert curve(m) == pytest.approx(expected, rel=0.06), (name, m)


def test_decode_and_prefill_attention_follow_the_table(calibration: Path):
    rs, _ = _resolved(calibration)
    cm = build_cost_model(rs.replica())
    layers = rs.model.num_layers
    ops = cm.op_times_s(_batch([(1, 1023)] * 16))  # 16 decodes at KV 1024: a grid point
    assert ops["attention"] == pytest.approx(layers * (3e-6 + 16 * 1024 * 2 * 8 * 128 * 2 / 2e12))
    # A chunk of 1000 tokens over 3000 cached = pairs of a fresh prompt of sqrt(q^2+2qc).
    ops = cm.op_times_s(_batch([(1000, 3000)]))
    isl = np.sqrt(1000**2 + 2 * 1000 * 3000)
    fresh = 4e-6 + 4.0 * isl * (isl + 1) / 2 * 32 * 128 / 4e14
    assert ops["attention"] == pytest.approx(layers * fresh, rel=0.05)


def test_decode_run_equals_single_steps_bit_for_bit(calibration: Path):
    rs, _ = _resolved(calibration)
    cm = build_cost_model(rs.replica())
    contexts = [100, 2000, 57, 9000]
    run = cm.decode_run_times_s(4, sum(contexts), 6)
    for j in range(6):
        assert cm.step_time_s(_batch([(1, c + j) for c in contexts])) == run[j]


def test_fast_forward_is_exact_with_a_calibration(calibration: Path):
    results = []
    for fast in (True, False):
        rs, trace = _resolved(calibration, simulation={"fast_forward": fast},
                              engine={"num_gpu_blocks_override": 400})  # fmt: skip
        results.append(api.run_resolved(rs, trace))
    a, b = (r.requests for r in results)
    assert a.column("finish_s").equals(b.column("finish_s"))
    assert a.column("first_token_s").equals(b.column("first_token_s"))


def test_extrapolation_keeps_the_roofline_shape(calibration: Path):
    rs, _ = _resolved(calibration, engine={"max_num_batched_tokens": 32768,
                                           "max_num_seqs": 256})  # fmt: skip
    cm = build_cost_model(rs.replica())
    curve = cm.lookup.gemm(4096, 4096, "bfloat16", cm._t_grid, cm._gemm_roof)
    # Beyond the measured m (8192) time grows like the roofline: compute-bound, linear in m.
    ratio = curve(32768) / curve(8192)
    assert ratio == pytest.approx(cm._gemm_roof(np.array([32768.0]), 4096, 4096)[0]
                                  / cm._gemm_roof(np.array([8192.0]), 4096, 4096)[0])  # fmt: skip
    assert 3.5 < ratio < 4.1


def test_calibration_of_another_device_is_refused(tmp_path: Path):
    other = _synthetic_calibration(tmp_path / "a100", device="A100-80GB")
    with pytest.raises(InputError, match=r"measured on A100-80GB, but hardware.gpu is H100-SXM"):
        _resolved(other)


def test_unknown_calibration_name():
    with pytest.raises(InputError, match=r"calibration: unknown calibration 'h100-vllm-9'"):
        _resolved(Path("h100-vllm-9"))


def test_leave_one_out_is_small_on_smooth_data_and_flags_noise(calibration: Path):
    from infsim.cost.store import load_rows

    rows, _ = load_rows(calibration)
    loo = leave_one_out(rows).set_index("op")
    assert set(loo.index) == {"gemm", "attention_decode", "attention_prefill"}
    assert (loo["median_abs_err_pct"] < 5).all()
    noisy = rows.copy()
    rng = np.random.default_rng(0)
    noisy["time_s"] = noisy["time_s"] * rng.lognormal(0.0, 0.4, len(noisy))
    noisy_loo = leave_one_out(noisy).set_index("op")
    assert noisy_loo.loc["gemm", "median_abs_err_pct"] > 10  # σ = 0.4 log-normal noise
    warnings = report(noisy)["warnings"]
    assert any(w.startswith("POOR FIT: gemm: held-out median error") for w in warnings)


def test_measured_step_overhead_rows_replace_the_parameters(tmp_path: Path):
    directory = _synthetic_calibration(tmp_path / "with-overhead")
    table, meta = read(directory)
    rows = table.to_pandas()
    extra = pd.DataFrame({"op": ["step_overhead"] * 3, "batch_size": [1, 8, 32],
                          "time_s": [2e-3 + 10e-6 * b for b in (1, 8, 32)]})  # fmt: skip
    write(directory, to_table(pd.concat([rows, extra], ignore_index=True), "x"), meta)
    rs, _ = _resolved(directory)
    cm = build_cost_model(rs.replica())
    assert cm.op_times_s(_batch([(1, 100)] * 4))["overhead"] == pytest.approx(2e-3 + 40e-6)
    plain = build_cost_model(_resolved(_synthetic_calibration(tmp_path / "plain"))[0].replica())
    assert plain.op_times_s(_batch([(1, 100)] * 4))["overhead"] == pytest.approx(
        rs.scenario.cost_model.step_overhead_s + 4 * rs.scenario.cost_model.per_seq_overhead_s
    )


def test_moe_layers_use_measured_expert_rows_of_the_shipped_h100_table():
    raw = {
        "model": "mixtral-8x7b", "hardware": {"gpu": "h100-sxm"},
        "calibration": "h100-vllm-0.19", "deployment": {"tensor_parallel": 2},
        "workload": {"synthetic": {"num_requests": 1, "arrival": {"kind": "poisson",
                     "rate_per_s": 1}, "prompt_tokens": {"kind": "fixed", "value": 8},
                     "output_tokens": {"kind": "fixed", "value": 2}}},
    }  # fmt: skip
    rs, _ = api.prepare(validate_scenario(raw, "t.yaml"), ".")
    log = LookupLog()
    cm = build_cost_model(rs.replica(), log)
    moe = [e for e in log.entries if e["op"] == "moe"]
    assert [e["method"] for e in moe] == ["measured"]
    assert "experts=8 topk=2 tp=2" in moe[0]["shape"]
    # More tokens touch more experts and do more work: the MoE step grows with batch.
    assert cm.decode_run_times_s(64, 64 * 1000, 1)[0] > cm.decode_run_times_s(1, 1000, 1)[0]
