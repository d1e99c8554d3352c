"""nsys-kern-sum and nsys-sqlite importers.

No real Nsight report is staged, so the fixtures are written from the documentation
(FORMATS.md §4.3): a `cuda_gpu_kern_sum` CSV with the nsys preamble lines, and an SQLite
export built here with `sqlite3` holding `StringIds`, `CUPTI_ACTIVITY_KIND_KERNEL` and
`NVTX_EVENTS` with the documented column names.
"""

import json
import sqlite3

import pytest

from infsim.calibration.importers import ImportOptions, import_paths
from infsim.calibration.profilers.nsys import kernel_op
from infsim.errors import InputError

KERN_SUM = """Generating SQLite file report.sqlite from report.nsys-rep
Processing [report.sqlite] with [/opt/nsys/reports/cuda_gpu_kern_sum.py]...
Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),Name
61.2,"1,234,000",100,"12,340.0","12,000.0","11,000","15,000",300.1,sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64
20.1,"405,000",50,"8,100.0","8,000.0","7,900","8,500",50.0,"void flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4>>(Flash_fwd_params)"
10.0,"200,000",100,"2,000.0","1,900.0","1,800","2,400",30.0,"void vllm::rms_norm_kernel<c10::BFloat16>(c10::BFloat16*, ...)"
5.0,"100,000",50,"2,000.0","2,100.0","1,900","2,300",20.0,"void vllm::act_and_mul_kernel<c10::BFloat16, &vllm::silu_kernel>(...)"
3.7,"74,000",4,"18,500.0","18,500.0","18,000","19,000",10.0,ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)
"""  # noqa: E501 (CSV rows as nsys writes them)


def test_kernel_name_patterns():
    assert kernel_op("sm90_xmma_gemm_bf16bf16_bf16f32") == "gemm"
    assert kernel_op("cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm>") == "gemm"
    assert kernel_op("void flash_fwd_kernel<...>") == "attention"
    assert kernel_op("fmha_cutlassF_bf16_aligned_64x128_rf_sm80") == "attention"
    assert kernel_op("ncclDevKernel_AllReduce_Sum_bf16_RING_LL") == "all_reduce"
    assert kernel_op("void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>") == "all_reduce"
    assert kernel_op("void vllm::rms_norm_kernel<c10::BFloat16>") == "norm"
    assert kernel_op("void at::native::elementwise_kernel<128, 2>") is None


def test_kern_sum_without_shape_file_explains_why(tmp_path):
    path = tmp_path / "report_cuda_gpu_kern_sum.csv"
    path.write_text(KERN_SUM)
    with pytest.raises(InputError, match=r"kern_sum\.csv: Nsight kernel records carry no shapes"):
        import_paths("nsys-kern-sum", [path], ImportOptions(device="H100-SXM"))


def test_kern_sum_with_shape_file_gives_per_token_rows(tmp_path):
    path = tmp_path / "report_cuda_gpu_kern_sum.csv"
    path.write_text(KERN_SUM)
    (tmp_path / "report_cuda_gpu_kern_sum.csv.shape.json").write_text(json.dumps({"num_tokens": 8}))
    result = import_paths("nsys-kern-sum", [path], ImportOptions(device="H100-SXM"))
    rows = result.frame.set_index("op")
    assert sorted(rows.index) == ["activation", "norm"]
    assert rows.loc["norm", "time_s"] == pytest.approx(1900e-9)  # Med (ns), thousands sep
    assert rows.loc["norm", "num_tokens"] == 8
    assert "rms_norm_kernel" in rows.loc["norm", "variant"]
    notes = " ".join(result.meta["notes"])
    assert "gemm ×100" in notes
    assert "all_reduce ×4" in notes
    assert result.meta["device"] == "H100-SXM"


def test_kern_sum_unknown_unit_is_an_error(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text(KERN_SUM.replace("Med (ns)", "Med (fortnights)"))
    with pytest.raises(InputError, match=r"k\.csv: unknown time unit 'fortnights'"):
        import_paths("nsys-kern-sum", [path], ImportOptions(device="H100-SXM"))


def make_sqlite(path, devices=(0,)):
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER, end INTEGER, deviceId INTEGER,
            contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER,
            demangledName INTEGER, shortName INTEGER, mangledName INTEGER, gridX INTEGER);
        CREATE TABLE NVTX_EVENTS (start INTEGER, end INTEGER, eventType INTEGER,
            text TEXT, textId INTEGER, globalTid INTEGER);
        INSERT INTO StringIds VALUES (1, 'void vllm::rms_norm_kernel<c10::BFloat16>(...)'),
            (2, 'rms_norm_kernel'), (3, 'sm90_xmma_gemm_bf16'),
            (4, 'execute_context_0(0)_generation_8(8)');
        """
    )
    rows = []
    for i, device in enumerate(devices * 3):
        rows.append((1000 * i, 1000 * i + 2000 + i, device, 1, 7, i, 1, 1, 2, 0, 1))
        rows.append((1000 * i + 500, 1000 * i + 9000, device, 1, 7, i, 1, 3, 3, 0, 1))
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.executemany(
        "INSERT INTO NVTX_EVENTS VALUES (?,?,59,?,?,1)",
        [(0, 5_000_000, None, 4), (6_000_000, 10_000_000, None, 4), (0, 100, "other range", None)],
    )
    con.commit()
    con.close()


def test_sqlite_gives_nvtx_step_rows(tmp_path):
    path = tmp_path / "report.sqlite"
    make_sqlite(path)
    result = import_paths("nsys-sqlite", [path], ImportOptions(device="H100-SXM"))
    [step] = result.frame.to_dict("records")
    # Two NVTX ranges named by vLLM's step annotation: 8 decodes, 5 ms and 4 ms → median.
    assert (step["op"], step["num_tokens"], step["batch_size"]) == ("step", 8, 8)
    assert step["time_s"] == pytest.approx(4.5e-3)


def test_sqlite_with_shape_file_adds_kernel_rows(tmp_path):
    path = tmp_path / "report.sqlite"
    make_sqlite(path)
    (tmp_path / "report.sqlite.shape.json").write_text('{"num_tokens": 8}')
    frame = import_paths("nsys-sqlite", [path], ImportOptions(device="H100-SXM")).frame
    norm = frame[frame.op == "norm"].iloc[0]
    assert norm.time_s == pytest.approx(2001e-9)  # median of 2000, 2001, 2002 ns


def test_sqlite_two_devices_and_non_sqlite_are_errors(tmp_path):
    path = tmp_path / "two.sqlite"
    make_sqlite(path, devices=(0, 1))
    with pytest.raises(InputError, match=r"two\.sqlite: kernels from 2 devices"):
        import_paths("nsys-sqlite", [path], ImportOptions(device="H100-SXM"))
    bad = tmp_path / "bad.sqlite"
    bad.write_text("hello")
    with pytest.raises(InputError, match=r"bad\.sqlite: not an Nsight Systems SQLite export"):
        import_paths("nsys-sqlite", [bad], ImportOptions(device="H100-SXM"))
