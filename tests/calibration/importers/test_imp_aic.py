"""AIConfigurator importer on the staged perf databases and on small synthetic tables."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from infsim.calibration.importers import ImportOptions, aiconfigurator_data_dir, import_paths
from infsim.errors import InputError

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "profiles"
AIC = DATA / "nvidia_aiconfigurator" / "data"
needs_data = pytest.mark.skipif(not AIC.is_dir(), reason=f"shared profile data absent ({AIC})")


def aic(*paths: Path, **options: object) -> pd.DataFrame:
    return import_paths("aiconfigurator", list(paths), ImportOptions(**options)).frame


def fake_gemm(path: Path, **overrides: object) -> Path:
    """A 2-row gemm_perf table in the AIC layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {"framework": "VLLM", "version": "0.19.0", "device": "NVIDIA H100 80GB HBM3",
         "op_name": "gemm", "kernel_source": "vllm_default", "gemm_dtype": "bfloat16",
         "m": [1, 2], "n": [4096, 4096], "k": [4096, 4096], "latency": [0.01, 0.02]}
    )  # fmt: skip
    for key, value in overrides.items():
        frame[key] = value
    frame.to_parquet(path)
    return path


@needs_data
def test_gemm_rows_units_and_one_exact_value() -> None:
    frame = aic(AIC / "h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet")
    assert len(frame) == 101003  # README inventory
    assert set(frame["dtype"]) == {"bfloat16", "fp8", "fp8_block"}
    row = frame[(frame.m == 32768) & (frame.n == 65536) & (frame.k == 12288)]
    row = row[row.dtype == "bfloat16"]
    assert row["time_s"].item() == pytest.approx(63.745294e-3)  # 63.745294 ms in the file
    assert set(frame["variant"]) == {"vllm_default"}


@needs_data
def test_attention_conventions() -> None:
    base = AIC / "h100_sxm/attention/vllm/0.19.0"
    prefill = aic(base / "context_attention_perf.parquet")
    assert len(prefill) == 43656 // 2  # window_size 128 (sliding) rows dropped
    assert (prefill["op"] == "attention_prefill").all()
    assert (prefill["query_len"] == prefill["kv_len"]).all()  # no cached prefix
    assert set(prefill["kv_dtype"]) == {"bfloat16", "fp8"}
    decode = aic(base / "generation_attention_perf.parquet")
    assert len(decode) == 45056 // 2
    # isl = 1, step = 2^j - 1: kv_len = isl + step is the sequence length, a power of two
    assert set(decode["kv_len"]) == {2**j for j in range(1, 18)}
    assert "query_len" not in decode.columns


@needs_data
def test_collectives_bytes_and_variants() -> None:
    nccl = aic(AIC / "a100_sxm/comm/nccl/2.27.3/nccl_perf.parquet")
    assert len(nccl) == 504
    assert set(nccl["op"]) == {"all_reduce", "all_gather", "reduce_scatter", "all_to_all"}
    raw = pd.read_parquet(AIC / "a100_sxm/comm/nccl/2.27.3/nccl_perf.parquet")
    width = raw["nccl_dtype"].map({"half": 2, "int8": 1})
    assert nccl["message_bytes"].tolist() == (raw["message_size"] * width).tolist()
    assert set(nccl["dtype"]) == {"float16", "int8"}
    custom = aic(AIC / "h100_sxm/comm/vllm/0.19.0/custom_allreduce_perf.parquet")
    assert len(custom) == 138
    assert set(custom["variant"]) == {"vllm_graph", "vllm_eager"}


@needs_data
def test_moe_keeps_tp_and_drops_expert_parallel_rows() -> None:
    path = AIC / "a100_sxm/moe/vllm/0.14.0/moe_perf.parquet"
    frame = aic(path)
    raw = pd.read_parquet(path, columns=["moe_ep_size", "moe_tp_size"])
    assert len(frame) == (raw["moe_ep_size"] == 1).sum()
    assert set(frame["tp"]) == set(raw.loc[raw["moe_ep_size"] == 1, "moe_tp_size"])
    assert all("/" in v for v in frame["variant"])  # kernel_source/distribution


@needs_data
def test_system_directory_filtered_by_engine_and_version() -> None:
    result = import_paths(
        "aiconfigurator",
        [AIC / "a100_sxm"],
        ImportOptions(engine="vllm", engine_version="0.14.0", dtypes=("bf16",)),
    )
    assert result.meta["device"] == "A100-80GB"
    assert (result.meta["engine"], result.meta["engine_version"]) == ("vllm", "0.14.0")
    assert len(result.provenance) == 6  # gemm, 2 attention, nccl, custom all-reduce, moe
    assert all(len(p.sha256) == 64 and p.rows > 0 for p in result.provenance)
    # the dtype filter applies to compute rows; collectives keep their int8 rows
    assert set(result.frame.loc[result.frame.op == "gemm", "dtype"]) == {"bfloat16"}
    assert "int8" in set(result.frame.loc[result.frame.op == "all_gather", "dtype"])
    with pytest.raises(InputError, match=r"several engines/versions .*vllm 0\.24\.0"):
        import_paths("aiconfigurator", [AIC / "h100_sxm"], ImportOptions(engine="vllm"))


def test_installed_package_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert aiconfigurator_data_dir() is None  # the package is not installed here
    data = tmp_path / "aiconfigurator_core" / "systems" / "data"
    (tmp_path / "aiconfigurator_core" / "__init__.py").parent.mkdir(parents=True)
    (tmp_path / "aiconfigurator_core" / "__init__.py").write_text("")
    fake_gemm(data / "h200_sxm/gemm/vllm/0.19.0/gemm_perf.parquet")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "aiconfigurator_core", raising=False)
    assert aiconfigurator_data_dir() == data
    result = import_paths("aiconfigurator", [data / "h200_sxm"], ImportOptions())
    assert result.meta["device"] == "H200"
    assert result.frame["time_s"].tolist() == pytest.approx([1e-5, 2e-5])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latency": None}, "missing column"),
        ({"gemm_dtype": "fp3"}, "unknown dtype 'fp3'"),
        ({"latency": -1.0}, "time_s must be a positive"),
    ],
)
def test_bad_file_names_the_file(tmp_path: Path, change: dict, message: str) -> None:
    path = fake_gemm(tmp_path / "h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet")
    frame = pd.read_parquet(path)
    for key, value in change.items():
        frame = frame.drop(columns=key) if value is None else frame.assign(**{key: value})
    frame.to_parquet(path)
    with pytest.raises(InputError, match=message) as err:
        aic(path)
    assert str(path) in str(err.value)


def test_empty_table_and_mixed_devices(tmp_path: Path) -> None:
    empty = fake_gemm(tmp_path / "h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet")
    pd.read_parquet(empty).iloc[:0].to_parquet(empty)
    with pytest.raises(InputError, match=f"{empty}: empty table"):
        aic(empty)
    h100 = fake_gemm(tmp_path / "x/h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet")
    a100 = fake_gemm(tmp_path / "x/a100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet")
    with pytest.raises(InputError, match="mixed devices"):
        aic(h100, a100)


def test_all_or_nothing(tmp_path: Path) -> None:
    good = fake_gemm(tmp_path / "a/h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet")
    bad = fake_gemm(tmp_path / "b/h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet", m=0)
    assert len(aic(good)) == 2
    with pytest.raises(InputError, match=rf"{bad}: row 0: op 'gemm' needs a positive 'm'"):
        aic(good, bad)
