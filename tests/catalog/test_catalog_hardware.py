"""GPU catalog: every entry loads, aliases, FLOP/s fallbacks, units, errors."""

import pytest

from infsim.catalog import gpu_names, load_gpu
from infsim.errors import InputError

EXPECTED = {"A100-40GB", "A100-80GB", "H100-SXM", "H100-PCIe", "H200", "B200", "L40S", "L4"}
EXPECTED |= {"MI300X", "RTX-4090", "RTX-PRO-6000", "cpu-host"}


def test_every_entry_loads_with_sources():
    assert set(gpu_names()) == EXPECTED
    for name in gpu_names():
        gpu = load_gpu(name)
        assert gpu.source
        assert gpu.as_of
        assert gpu.price.source
        assert gpu.price.as_of
        assert gpu.memory_bytes > 0
        assert gpu.mem_bandwidth_bytes_per_s > 0
        assert gpu.price.on_demand_usd_per_hour >= 0


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("a100", "A100-80GB"),
        ("a100-80gb", "A100-80GB"),
        ("A100_40GB", "A100-40GB"),
        ("h100", "H100-SXM"),
        ("h100-sxm", "H100-SXM"),
        ("h100_sxm", "H100-SXM"),
        ("NVIDIA H100 80GB HBM3", "H100-SXM"),
        ("h100-pcie", "H100-PCIe"),
        ("h200", "H200"),
        ("b200", "B200"),
        ("l40s", "L40S"),
        ("L4", "L4"),
        ("AMD Instinct MI300X", "MI300X"),
        ("cpu", "cpu-host"),
    ],
)
def test_aliases_resolve(alias, name):
    assert load_gpu(alias).name == name


def test_units_are_si():
    h100 = load_gpu("h100")
    assert h100.memory_bytes == 81559 * 2**20  # nvidia-smi memory.total, not 80e9
    assert h100.mem_bandwidth_bytes_per_s == 3.35e12
    assert h100.intra_node_link.bandwidth_bytes_per_s == 450e9  # per direction
    assert h100.intra_node_link.latency_s == pytest.approx(10e-6)
    assert h100.tdp_w == 700


@pytest.mark.parametrize(
    ("gpu", "precision", "tflops"),
    [
        ("h100", "bf16", 989),
        ("h100", "fp16", 989),
        ("h100", "fp8_e4m3", 1978),
        ("h100", "nvfp4", 1978),  # no FP4 on Hopper: fp8 rate
        ("h100", "awq", 989),  # weight-only: bf16 rate
        ("h100", "int8", 989),  # no int8 rate listed: treated as W8A16
        ("a100", "fp8", 312),  # no FP8 on Ampere: bf16 rate
        ("b200", "fp4", 9000),
        ("mi300x", "bf16", 1307.4),
        ("cpu-host", "bf16", load_gpu("cpu-host").peak_flops_per_s["float32"] / 1e12),
    ],
)
def test_flops_per_s_with_fallback(gpu, precision, tflops):
    assert load_gpu(gpu).flops_per_s(precision) == pytest.approx(tflops * 1e12)


def test_flops_per_s_errors():
    with pytest.raises(InputError, match="resolved"):
        load_gpu("h100").flops_per_s("auto")
    with pytest.raises(InputError, match="no peak FLOP/s for 'float32'"):
        load_gpu("h100").flops_per_s("fp32")


def test_unknown_gpu_suggests():
    with pytest.raises(InputError, match=r"did you mean 'h100'.*known: A100-40GB"):
        load_gpu("h10")


def test_specs_are_frozen_hashable_and_cached():
    gpu = load_gpu("h200")
    assert gpu is load_gpu("H200")
    assert hash(gpu) == hash(load_gpu("h200-sxm"))
    with pytest.raises(TypeError):
        gpu.peak_flops_per_s["fp4"] = 1.0  # read-only mapping


def test_cpu_host_has_no_links():
    cpu = load_gpu("cpu-host")
    assert cpu.gpus_per_node == 1
    assert cpu.intra_node_link.kind == "none"
    assert cpu.tdp_w is None
