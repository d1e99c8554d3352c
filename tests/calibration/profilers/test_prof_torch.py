"""torch-profiler importer: real HTA Kineto traces and small hand-written traces.

The hand-written fixtures follow FORMATS.md §4.1 and shared/live/README.md "Profile": a
vLLM CPU-backend trace (cpu_op events only, one `execute_context_…` step annotation per
engine step) and a GPU trace whose kernels reach their CPU op only through correlation
ids (as in the older HTA A100 samples) or through an `ac2g` flow event.
"""

import gzip
import json
from pathlib import Path

import pytest

from infsim.calibration.importers import ImportOptions, import_paths
from infsim.calibration.profilers import torch_profiler
from infsim.calibration.profilers.torch_ops import Shaped, Unshaped, classify
from infsim.errors import InputError

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "formats"
HTA = DATA / "pytorch_profiler"
needs_data = pytest.mark.skipif(not HTA.is_dir(), reason="shared data not present")


def op(name, ts, dur, dims=None, types=None, cat="cpu_op", tid=1, **args):
    if dims is not None:
        args["Input Dims"] = dims
        args["Input type"] = types or ["c10::BFloat16"] * len(dims)
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": 100,
        "tid": tid,
        "ts": ts,
        "dur": dur,
        "args": args,
    }


def write(tmp_path, events, name="trace.json", **top):
    path = tmp_path / name
    text = json.dumps({"schemaVersion": 1, "traceEvents": events, **top})
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def vllm_cpu_trace():
    """Two engine steps of the vLLM CPU backend, as its torch profiler records them."""
    bf16 = "c10::BFloat16"
    events = []
    for start, name, tokens in (
        (0, "execute_context_1(10)_generation_4(4)", 14),
        (1000, "execute_context_0(0)_generation_5(5)", 5),
    ):
        events += [
            op(name, start, 900, cat="user_annotation"),
            op(
                "_C::onednn_mm",
                start + 10,
                50,
                [[tokens, 768], [tokens, 512], [], []],
                [bf16, bf16, "", "Scalar"],
            ),
            op(
                "vllm::unified_attention_with_output",
                start + 70,
                40,
                [[tokens, 512], [tokens, 128], [tokens, 128], [tokens, 512], []],
            ),
            op("_C::cpu_attention_with_kv_cache", start + 75, 30, [[tokens, 8, 64]]),
            op("_C::rms_norm", start + 120, 5, [[tokens, 512], [tokens, 512], [512], []]),
            op("_C::silu_and_mul", start + 130, 6, [[tokens, 1408], [tokens, 2816]]),
            op("aten::copy_", start + 140, 3, [[tokens], [tokens]]),
        ]
    return events


def test_vllm_cpu_trace_gives_ops_from_cpu_durations_and_steps(tmp_path):
    path = write(tmp_path, vllm_cpu_trace(), name="rank0.pt.trace.json.gz")
    result = import_paths("torch-profiler", [path], ImportOptions())
    frame = result.frame.set_index("variant")
    # Steps: 1 prefill of 10 tokens + 4 decodes → 14 tokens, 5 sequences; 900 us.
    step = frame.loc["execute_context_1(10)_generation_4(4)"]
    assert (step.op, step.num_tokens, step.batch_size) == ("step", 14, 5)
    assert step.time_s == pytest.approx(900e-6)
    gemm = result.frame[result.frame.op == "gemm"].sort_values("m")
    assert gemm[["m", "n", "k"]].to_numpy().tolist() == [[5, 768, 512], [14, 768, 512]]
    assert gemm.dtype.tolist() == ["bfloat16", "bfloat16"]
    assert gemm.time_s.tolist() == pytest.approx([50e-6, 50e-6])
    norm = result.frame[result.frame.op == "norm"]
    assert set(norm.num_tokens) == {5, 14}
    assert set(norm.hidden_size) == {512}
    act = result.frame[result.frame.op == "activation"]
    assert set(act.inter_size) == {1408}
    # Paged attention: recognised, no per-sequence lengths → skipped and counted, and the
    # inner cpu_attention op is claimed by the outer one (counted once per step).
    notes = " ".join(result.meta["notes"])
    assert "vllm::unified_attention_with_output: paged/varlen attention" in notes
    assert "×2" in notes
    assert "cpu_attention_with_kv_cache" not in notes
    assert result.meta["device"] == "cpu-host"
    assert result.provenance[0].rows == len(result.frame)


def test_gpu_kernels_join_through_correlation_and_flow(tmp_path):
    events = [
        op("aten::linear", 0, 100, [[2, 16, 512], [1536, 512], [1536]], tid=1),
        op("aten::addmm", 5, 90, [[1536], [32, 512], [512, 1536]], tid=1),
        op("cudaLaunchKernel", 10, 5, cat="cuda_runtime", correlation=7),
        op("cudaLaunchKernel", 50, 5, cat="cuda_runtime", correlation=8),
        # kernel 1: args.correlation; kernel 2: only the ac2g flow names its launch
        {
            "ph": "X",
            "cat": "kernel",
            "name": "sm90_xmma_gemm_bf16",
            "pid": 0,
            "tid": 7,
            "ts": 200,
            "dur": 12.5,
            "args": {"correlation": 7, "device": 0},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": "bias_add",
            "pid": 0,
            "tid": 7,
            "ts": 220,
            "dur": 2.5,
            "args": {"device": 0},
        },
        {"ph": "f", "cat": "ac2g", "id": 8, "pid": 0, "tid": 7, "ts": 220, "bp": "e"},
        op("aten::add", 300, 10, [[4], [4]], tid=1),
        op("cudaLaunchKernel", 302, 5, cat="cuda_runtime", correlation=9),
        {
            "ph": "X",
            "cat": "kernel",
            "name": "elementwise",
            "pid": 0,
            "tid": 7,
            "ts": 400,
            "dur": 1,
            "args": {"correlation": 9, "device": 0},
        },
    ]
    frame, notes, gpu = torch_profiler.read_traces([write(tmp_path, events)])
    assert gpu == "GPU (no deviceProperties)"
    [row] = frame.to_dict("records")
    # aten::linear [2,16,512] x [1536,512]^T → one gemm m=32 n=1536 k=512; both kernels.
    assert (row["op"], row["m"], row["n"], row["k"]) == ("gemm", 32, 1536, 512)
    assert row["variant"] == "aten::linear"
    assert row["time_s"] == pytest.approx(15e-6)
    assert any("1 of 3 kernels outside any modelled op: aten::add ×1" in n for n in notes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not a JSON Chrome trace"),
        (b'{"foo": 1}', "no 'traceEvents'"),
        (
            b'{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::add", "ts": 1,'
            b' "dur": 1, "pid": 1, "tid": 1, "args": {}}]}',
            "no usable events",
        ),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"bad\.json: .*{message}"):
        import_paths("torch-profiler", [path], ImportOptions())


def test_kernels_from_two_devices_are_rejected(tmp_path):
    events = [
        op("aten::mm", 0, 10, [[4, 8], [8, 16]]),
        op("cudaLaunchKernel", 1, 1, cat="cuda_runtime", correlation=1),
    ]
    events += [
        {
            "ph": "X",
            "cat": "kernel",
            "name": "gemm",
            "pid": d,
            "tid": 7,
            "ts": 5,
            "dur": 1,
            "args": {"correlation": 1, "device": d},
        }
        for d in (0, 1)
    ]
    with pytest.raises(InputError, match=r"trace\.json: kernels from 2 devices"):
        torch_profiler.read_traces([write(tmp_path, events)])


def test_gpu_and_cpu_traces_do_not_mix(tmp_path):
    cpu = write(tmp_path, vllm_cpu_trace(), name="cpu.json")
    gpu = write(
        tmp_path,
        [
            op("aten::mm", 0, 10, [[4, 8], [8, 16]]),
            op("cudaLaunchKernel", 1, 1, cat="cuda_runtime", correlation=1),
            {
                "ph": "X",
                "cat": "kernel",
                "name": "gemm",
                "pid": 0,
                "tid": 7,
                "ts": 5,
                "dur": 1,
                "args": {"correlation": 1},
            },
        ],
        name="gpu.json",
    )
    with pytest.raises(InputError, match=r"gpu\.json: device .* differs"):
        torch_profiler.read_traces([cpu, gpu])


@pytest.mark.parametrize(
    ("name", "dims", "expected"),
    [
        ("aten::mm", [[4, 8], [8, 16]], ("gemm", {"m": 4, "n": 16, "k": 8})),
        ("aten::matmul", [[2, 3, 8], [8, 16]], ("gemm", {"m": 6, "n": 16, "k": 8})),
        (
            "aten::scaled_dot_product_attention",
            [[2, 8, 1, 64], [2, 2, 300, 64]],
            ("attention_decode", {"batch_size": 2, "kv_len": 300, "num_kv_heads": 2}),
        ),
        (
            "aten::_scaled_dot_product_flash_attention",
            [[1, 8, 128, 64], [1, 8, 128, 64]],
            ("attention_prefill", {"query_len": 128, "kv_len": 128, "num_heads": 8}),
        ),
        (
            "aten::embedding",
            [[32000, 4096], [3, 7]],
            ("embedding", {"num_tokens": 21, "hidden_size": 4096}),
        ),
        ("nccl:all_reduce", [[1024]], ("all_reduce", {"message_bytes": 2048, "num_devices": 4})),
    ],
)
def test_classify_shapes(name, dims, expected):
    result = classify(name, {"Input Dims": dims, "Input type": ["c10::BFloat16"] * 2}, 4)
    assert isinstance(result, Shaped)
    assert result.op == expected[0]
    assert expected[1].items() <= dict(result.shape).items()


def test_classify_skips_what_it_cannot_shape():
    assert isinstance(classify("aten::bmm", {"Input Dims": [[2, 3, 4], [2, 4, 5]]}), Unshaped)
    assert isinstance(classify("aten::mm", {}), Unshaped)  # no record_shapes
    assert classify("aten::copy_", {"Input Dims": [[3]]}) is None


@needs_data
def test_hta_a100_sample_joins_kernels_and_finds_gemms_norms_collectives():
    path = HTA / "hta_sampled_rank-0_kineto_trace.json.gz"
    result = import_paths("torch-profiler", [path], ImportOptions(device="A100-80GB"))
    counts = result.frame.op.value_counts().to_dict()
    assert counts["gemm"] > 100
    assert {"norm", "all_reduce"} <= set(counts)
    # The all-reduce message is read from the nccl:all_reduce annotation's Input Dims
    # (float32) and the group size from distributedInfo.world_size.
    ar = result.frame[result.frame.op == "all_reduce"]
    assert (ar.num_devices == 128).all()
    assert (ar.message_bytes % 4 == 0).all()
    assert result.frame.time_s.between(1e-6, 1.0).all()


@needs_data
def test_hta_rocm_sample_maps_linear_and_mm():
    path = HTA / "hta_mi250_rocm6.2_kineto_trace.json.gz"
    frame, _, gpu = torch_profiler.read_traces([path])
    assert gpu == "AMD Radeon Graphics"
    gemm = frame[frame.op == "gemm"].set_index("variant")
    assert gemm.loc["aten::linear", ["m", "n", "k"]].tolist() == [5, 128, 128]


@needs_data
def test_hta_trace_without_shapes_says_record_shapes():
    path = HTA / "hta_simple_add_kineto_trace.json.gz"
    with pytest.raises(InputError, match="record_shapes=True"):
        torch_profiler.read_traces([path])
