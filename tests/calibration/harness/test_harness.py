"""Calibration harness: the shape grid (no torch) and a tiny timed run (torch, if installed)."""

from pathlib import Path

import pytest

from infsim.calibration.harness import Plan, cases
from infsim.calibration.harness.plan import projections
from infsim.catalog.model import load_model
from infsim.cost import table
from infsim.errors import InputError

SHIPPED = Path(__file__).resolve().parents[3] / "calibration" / "cpu-host-torch"


def test_projection_shapes_follow_the_model_and_tp():
    model = load_model("Llama-3.1-8B")
    assert projections(model, 1) == [
        ("qkv_proj", 4096 + 2 * 1024, 4096),
        ("o_proj", 4096, 4096),
        ("gate_up_proj", 2 * 14336, 4096),
        ("down_proj", 4096, 14336),
    ]
    assert projections(model, 4)[0] == ("qkv_proj", (4096 + 2 * 1024) // 4, 4096)


def test_quick_plan_covers_every_op_and_rows_are_valid_shapes():
    model = load_model("Llama-3.1-8B")
    grid = cases(model, Plan.quick(), tp=2, num_devices=2)
    assert {c.op for c in grid} == {
        "gemm",
        "lm_head",
        "attention_prefill",
        "attention_decode",
        "norm",
        "activation",
        "sampler",
        "all_reduce",
    }
    prefill = [c.dims() for c in grid if c.op == "attention_prefill"]
    assert all(d["kv_len"] >= d["query_len"] and d["num_heads"] == 16 for d in prefill)
    rows = [{"op": c.op, **c.dims(), "time_s": 1e-6} for c in grid]
    import pandas as pd

    table.to_table(pd.DataFrame(rows), "grid")  # REQUIRED columns present and positive


def test_tp_must_divide_heads():
    with pytest.raises(InputError, match="tp=3 must divide"):
        cases(load_model("Llama-3.1-8B"), Plan.quick(), tp=3)


def test_shipped_cpu_table_is_valid_and_small():
    ops, meta = table.read(SHIPPED)
    assert meta.device == "cpu-host"
    assert meta.engine == "torch"
    assert (SHIPPED / "ops.parquet").stat().st_size < 1_000_000
    assert {"gemm", "attention_decode", "attention_prefill", "norm", "sampler"} <= set(
        ops.column("op").to_pylist()
    )


def test_collect_tiny_grid_on_cpu(tmp_path):
    pytest.importorskip("torch")
    from infsim.calibration.harness import main

    config = tmp_path / "config.json"
    config.write_text(
        '{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, '
        '"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, '
        '"vocab_size": 256, "max_position_embeddings": 512, "torch_dtype": "bfloat16"}'
    )
    out = tmp_path / "cal"
    assert main(["--model", str(config), "--out", str(out), "--quick"]) == 0
    ops, meta = table.read(out)
    frame = ops.to_pandas()
    assert len(frame) == len(cases(load_model(str(config)), Plan.quick()))
    assert (frame.time_s > 0).all()
    assert meta.name == "cal"
    assert meta.importer.startswith("python -m infsim.calibration.harness --model")
    assert meta.provenance[0].path == str(config)
