"""Regression tests of issue 15 for `calibrate import` and calibration tables: each family of
bad input that ended in a traceback or a numpy warning now ends in one `InputError` naming
the file and the table, column or row; `infsim calibrate import` prints it and exits 2."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from infsim.calibration.importers import ImportOptions, import_paths
from infsim.cli import main
from infsim.cost import table as cal_table
from infsim.errors import InputError


def refused(fmt: str, *paths: Path, **options: object) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning before the message
        with pytest.raises(InputError) as err:
            import_paths(fmt, list(paths), ImportOptions(**options))
    assert "\n" not in str(err.value)
    return str(err.value)


def gemm_table(path: Path, **columns: object) -> Path:
    """A 2-row AIConfigurator gemm_perf table (any column replaced by `columns`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"kernel_source": ["vllm_default"] * 2, "gemm_dtype": ["bfloat16"] * 2,
            "m": [1, 2], "n": [4096, 4096], "k": [4096, 4096], "latency": [0.01, 0.02]}  # fmt: skip
    data.update(columns)
    pq.write_table(pa.table(data), path)
    return path


def aic_path(tmp_path: Path) -> Path:
    return tmp_path / "h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet"


# -- AIConfigurator: shapes that are nan, inf, huge or text; damaged Parquet ----------------


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        ([math.nan, 2.0], "column 'm' row 0: not a number up to 2^53: nan"),
        ([math.inf, 2.0], "column 'm' row 0: not a number up to 2^53: inf"),
        ([1e300, 2.0], "column 'm' row 0: not a number up to 2^53: 1e+300"),
        (["8", "x"], "column 'm' row 1: not a number up to 2^53: 'x'"),
        ([True, False], "column 'm' row 0: not a number up to 2^53: True"),
        ([[1], [2]], "column 'm' row 0: not a number"),
        ([2.5, 2.0], "calibration row 0 (op 'gemm', variant 'vllm_default'): m is 2.5; expected"),
    ],
)
def test_aic_bad_shapes(tmp_path, m, expected):
    path = gemm_table(aic_path(tmp_path), m=m)
    assert f"{path}: {expected}" in refused("aiconfigurator", path)


@pytest.mark.parametrize("column", ["kernel_source", "gemm_dtype"])
def test_aic_text_columns_must_be_text(tmp_path, column):
    path = gemm_table(aic_path(tmp_path), **{column: [1, 2]})
    assert f"{path}: column {column!r} row 0: expected text, got 1" in refused(
        "aiconfigurator", path
    )


def test_aic_damaged_parquet(tmp_path):
    path = gemm_table(aic_path(tmp_path))
    path.write_bytes(path.read_bytes()[:-5])  # a cut footer (length and magic bytes)
    assert f"{path}: not a readable Parquet file" in refused("aiconfigurator", path)
    path = gemm_table(aic_path(tmp_path))
    raw = bytearray(path.read_bytes())
    for i in range(4, 40):  # the first data page (its header)
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    assert f"{path}: " in refused("aiconfigurator", path)


def test_aic_duplicated_column(tmp_path):
    path = aic_path(tmp_path)
    gemm_table(path)
    table = pq.read_table(path)
    pq.write_table(table.append_column("m", table.column("m")), path)
    assert f"{path}: column(s) m appear more than once" in refused("aiconfigurator", path)


# -- Vidur, LLMServingSim, nccl-tests: CSV values computed with before they were checked ----


def vidur_mlp(path: Path, **changes: object) -> Path:
    ops = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj",
           "input_layernorm", "post_attention_layernorm", "attn_rope", "mlp_act", "add",
           "emb")  # fmt: skip
    frame = pd.DataFrame({"n_head": 32, "n_kv_head": 8, "n_embd": 4096,
                          "n_expanded_embd": 14336, "use_gated_mlp": True, "num_tokens": [1, 64],
                          "num_tensor_parallel_workers": [1, 2],
                          **{f"time_stats.{op}.median": [0.1, 0.2] for op in ops}})  # fmt: skip
    frame = frame.assign(**changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"n_head": 0}, "column 'n_head' row 0: not a positive whole number"),  # was: divide by 0
        ({"num_tensor_parallel_workers": [0, 2]}, "column 'num_tensor_parallel_workers' row 0"),
        ({"n_embd": ["nan", "4096"]}, "column 'n_embd' row 0: not a positive whole number"),
        ({"use_gated_mlp": ["True", ""]}, "column 'use_gated_mlp' row 1: expected True or False"),
    ],
)
def test_vidur_values_are_checked_before_arithmetic(tmp_path, changes, expected):
    path = vidur_mlp(tmp_path / "compute/a100/org/model/mlp.csv", **changes)
    assert f"{path}: {expected}" in refused("vidur", path)


def test_vidur_blank_collective(tmp_path):
    path = tmp_path / "network/a100_dgx/all_reduce.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "time_stats.all_reduce.median,rank,num_workers,size,collective,devices_per_node\n"
        "0.04,0,2,2048,all_reduce,8\n0.05,0,2,4096,,8\n"
    )
    assert f"{path}: column 'collective' row 1: expected text, got nan" in refused("vidur", path)


def lss_bundle(root: Path, tp: str = "tp1", meta: bytes | None = None) -> Path:
    bundle = root / "RTXPRO6000/meta-llama/Llama-3.1-8B/bf16"
    (bundle / tp).mkdir(parents=True)
    default = {"vllm_version": "0.19.0", "hardware": "RTXPRO6000", "variant": "bf16",
               "model": "meta-llama/Llama-3.1-8B"}  # fmt: skip
    (bundle / "meta.yaml").write_bytes(
        meta if meta is not None else yaml.safe_dump(default).encode()
    )
    (bundle / tp / "per_sequence.csv").write_text("layer,sequences,time_us\nlm_head,1,714.0\n")
    return bundle / tp / "per_sequence.csv"


def test_lss_utf16_meta_yaml(tmp_path):
    """Was: UnicodeDecodeError."""
    path = lss_bundle(tmp_path, meta="model: meta-llama/Llama-3.1-8B\n".encode("utf-16"))
    message = refused("llmservingsim", path)
    assert f"{path.parent.parent}/meta.yaml: line 1: the bundle meta.yaml is not UTF-8" in message


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (b"- a\n- b\n", "meta.yaml: expected a mapping"),
        (b"model: {a: 1}\n", "meta.yaml: model is {'a': 1}; expected text"),
        (b"model: " + b"[" * 1000 + b"]" * 1000 + b"\n", "meta.yaml: nested 1000 levels deep"),
        (b"model: [\n", "meta.yaml: invalid YAML"),
    ],
)
def test_lss_bad_meta_yaml(tmp_path, meta, expected):
    assert expected in refused("llmservingsim", lss_bundle(tmp_path, meta=meta))


def test_lss_tp0_folder(tmp_path):
    """Was: ZeroDivisionError (heads per rank = heads // 0)."""
    path = lss_bundle(tmp_path, tp="tp0")
    assert f"{path}: not in a tp<N> folder of an LLMServingSim bundle (N = 1 to 1024)" in refused(
        "llmservingsim", path
    )


def test_lss_blank_layer(tmp_path):
    path = lss_bundle(tmp_path)
    path.write_text("layer,sequences,time_us\nlm_head,1,714.0\n,2,40.0\n")
    assert f"{path}: column 'layer' row 1: expected text, got nan" in refused("llmservingsim", path)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("H100-SXM-80GB,1,inf,half,4,15.0", "column 'num_gpus_per_node' row 0"),
        ("H100-SXM-80GB,1e400,8,half,4,15.0", "column 'num_nodes' row 0"),
        ("H100-SXM-80GB,1,8,half,99999999999999999999999,15.0", "column 'size(kb)' row 0"),
        (",1,8,half,4,15.0", "column 'gpu' row 0: expected text"),
    ],
)
def test_apex_values(tmp_path, row, expected):
    path = tmp_path / "all_reduce.csv"
    path.write_text(f"gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\n{row}\n")
    assert f"{path}: {expected}" in refused("nccl-tests", path)


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "all_reduce.csv"
    path.write_bytes("gpu,num_nodes\nH100-\xe9,1\n".encode("latin-1"))
    assert f"{path}: line 2: the CSV file is not UTF-8 text (byte 0xe9" in refused(
        "nccl-tests", path
    )


def test_ragged_csv_is_one_paragraph(tmp_path):
    path = tmp_path / "all_reduce.csv"
    path.write_text("gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\na,1,8,half,4,1,7\n")
    assert f"{path}: line 2: 7 fields, but the header has 6" in refused("nccl-tests", path)


def test_nccl_stdout_without_a_time_column(tmp_path):
    path = tmp_path / "all_reduce_perf.txt"
    path.write_text("# nThread 1 nGpus 2\n#  size  count  type  redop\n  1024  512  half  sum\n")
    assert f"{path}: the nccl-tests header has no 'time' column" in refused("nccl-tests", path)


# -- calibration tables: meta.yaml and ops.parquet as `infsim.cost.table.read` sees them ----


def calibration(tmp_path: Path) -> Path:
    frame = pd.DataFrame({"op": ["gemm"], "m": [1], "n": [8], "k": [8], "time_s": [1e-5]})
    meta = cal_table.CalibrationMeta(name="t", device="H100-SXM", engine="vllm", source="s",
                                     profiler="p", importer="i")  # fmt: skip
    out = tmp_path / "t"
    cal_table.write(out, cal_table.to_table(frame, "x"), meta)
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\n".encode("utf-16"), "meta.yaml: line 1: the calibration metadata is not UTF-8"),
        (b"name: " + b"[" * 1000 + b"]" * 1000, "meta.yaml: nested 1000 levels deep"),
        (b"name: t\nnotes: " + b"9" * 5000, "meta.yaml: unreadable value"),
        (b"name: [1]\n", "meta.yaml: invalid calibration metadata: name: Input should be"),
    ],
)
def test_table_meta_yaml(tmp_path, text, expected):
    out = calibration(tmp_path)
    (out / "meta.yaml").write_bytes(text)
    with pytest.raises(InputError, match=None) as err:
        cal_table.read(out)
    assert f"{out}/{expected}" in str(err.value)
    assert "\n" not in str(err.value)


def test_table_bad_parquet_footer(tmp_path):
    out = calibration(tmp_path)
    raw = (out / "ops.parquet").read_bytes()
    (out / "ops.parquet").write_bytes(raw[:-5])
    with pytest.raises(InputError, match=f"{out}/ops.parquet: not a readable Parquet file"):
        cal_table.read(out)


def test_cli_exits_2_on_each_family(tmp_path):
    path = gemm_table(aic_path(tmp_path), m=[math.inf, 1.0])
    tp0 = lss_bundle(tmp_path / "lss", tp="tp0")
    for fmt, source in (("aiconfigurator", path), ("llmservingsim", tp0)):
        result = CliRunner().invoke(
            main,
            ["calibrate", "import", fmt, str(source), "--name", "x", "-o", str(tmp_path / "o")],
        )
        assert result.exit_code == 2, result.output
        assert result.output.startswith("infsim: error: "), result.output
