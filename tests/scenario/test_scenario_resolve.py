"""Resolution against the catalogs: vLLM defaults, KV capacity, fit and TP checks, price."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.catalog.hardware import load_gpu
from infsim.catalog.model import load_model
from infsim.errors import InputError
from infsim.kvcache.capacity import GPU_RUNTIME_OVERHEAD_BYTES, kv_capacity
from infsim.scenario.load import validate_scenario
from infsim.scenario.resolve import resolve, vllm_batch_defaults


@pytest.fixture
def resolve_with(raw_scenario):
    """`resolve_with(engine={...})`: the minimal scenario with sections replaced, resolved."""

    def build(**sections):
        return resolve(validate_scenario(raw_scenario(**sections), "s.yaml"), Path("."), "s.yaml")

    return build


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [
        ("h100-sxm", (1024, 8192)),
        ("h200", (1024, 8192)),
        ("b200", (1024, 16384)),
        ("a100-80gb", (256, 2048)),
        ("l4", (256, 2048)),
    ],
)
def test_vllm_batch_defaults(gpu: str, expected: tuple[int, int]):
    assert vllm_batch_defaults(load_gpu(gpu)) == expected


def test_resolved_scenario_records_defaults(resolve_with):
    rs = resolve_with()
    e = rs.scenario.engine
    assert (e.max_num_seqs, e.max_num_batched_tokens) == (1024, 8192)
    assert e.max_model_len == 131072
    assert rs.scenario.deployment.weight_precision == "bfloat16"
    assert rs.num_gpus == 1


def test_kv_capacity_from_memory_matches_hand_computation():
    model, gpu = load_model("llama-3.1-8b"), load_gpu("h100-sxm")
    cap = kv_capacity(
        model=model,
        memory_bytes=gpu.memory_bytes,
        tensor_parallel=1,
        weight_precision="bfloat16",
        kv_precision="bfloat16",
        block_size=16,
        gpu_memory_utilization=0.9,
        max_num_batched_tokens=8192,
        max_num_seqs=256,
        runtime_overhead_bytes=GPU_RUNTIME_OVERHEAD_BYTES,
    )
    expected_bytes = (
        gpu.memory_bytes * 0.9
        - model.weight_bytes("bfloat16")
        - cap.activation_bytes_per_gpu
        - GPU_RUNTIME_OVERHEAD_BYTES
    )
    assert cap.num_blocks == int(expected_bytes // (16 * 131072))
    # vLLM logs ~450-480k KV tokens for Llama-3.1-8B on an 80 GB H100 at 0.9.
    assert 400_000 < cap.num_tokens < 520_000


def test_kv_override_and_explicit_bytes(resolve_with):
    assert resolve_with(engine={"num_gpu_blocks_override": 123}).kv.num_blocks == 123
    rs = resolve_with(engine={"kv_cache_memory_bytes": 2 << 30})
    assert rs.kv.num_blocks == (2 << 30) // (16 * 131072)
    assert rs.kv.source == "kv_cache_memory_bytes"


def test_fp8_kv_doubles_blocks_and_tp_shards_kv_heads(resolve_with):
    base = resolve_with(engine={"kv_cache_memory_bytes": 1 << 30}).kv.num_blocks
    fp8 = resolve_with(
        engine={"kv_cache_memory_bytes": 1 << 30}, deployment={"kv_cache_precision": "fp8"}
    ).kv.num_blocks
    tp2 = resolve_with(
        engine={"kv_cache_memory_bytes": 1 << 30}, deployment={"tensor_parallel": 2}
    ).kv.num_blocks
    assert fp8 == 2 * base
    assert tp2 == 2 * base


def test_tp_must_divide_heads(resolve_with):
    with pytest.raises(InputError, match="3 does not divide the 32 attention heads"):
        resolve_with(deployment={"tensor_parallel": 3})


def test_model_that_does_not_fit_reports_numbers(resolve_with):
    with pytest.raises(InputError) as err:
        resolve_with(model="llama-3.1-70b", hardware={"gpu": "l4"})
    msg = str(err.value)
    assert "does not fit" in msg
    assert "weights need 131.4 GiB" in msg
    assert "tensor_parallel" in msg


def test_unknown_model_and_gpu_name_the_field(resolve_with):
    with pytest.raises(InputError, match=r"s.yaml: model: unknown model"):
        resolve_with(model="llama-9b")
    with pytest.raises(InputError, match=r"s.yaml: hardware.gpu: unknown GPU 'h900'.*h200"):
        resolve_with(hardware={"gpu": "h900"})


def test_price_override_and_catalog_price(resolve_with):
    assert resolve_with(cost={"usd_per_gpu_hour": 1.5}).usd_per_gpu_hour == 1.5
    gpu = load_gpu("h100-sxm")
    assert resolve_with().usd_per_gpu_hour == gpu.price.on_demand_usd_per_hour


def test_one_block_is_vllms_null_block(resolve_with):
    # vLLM V1 reserves a null block: --num-gpu-blocks-override 33 serves 32 blocks
    # (seen on the live CPU engine, where 32 refused to start with max_model_len 4096).
    rs = resolve_with(engine={"num_gpu_blocks_override": 33})
    assert rs.kv.num_blocks == 33
    assert rs.kv.num_usable_blocks == 32
