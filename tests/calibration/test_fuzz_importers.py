"""Fuzzing `infsim calibrate import` (issue 15): every mutated profiler export is either
imported into a valid table or refused with one `InputError` naming the file — never
another exception, never a numpy warning, never more than a few seconds.

Each importer has a small valid input written here by hand (the layouts of the staged
sources and of the importers' own tests): AIConfigurator Parquet tables, Vidur and
LLMServingSim CSVs (with the bundle's meta.yaml), APEX+ and raw nccl-tests output, PyTorch
profiler traces (plain and gzip), Nsight `cuda_gpu_kern_sum` CSVs (with the shape sidecar)
and Nsight SQLite exports; plus a written calibration table (meta.yaml + ops.parquet) for
`infsim.cost.table.read`. Hypothesis mutates them: cells replaced by text, blanks, `nan`,
`inf`, huge, negative or fractional numbers; Parquet columns retyped (text, bool, lists),
dropped or duplicated; CSV rows cut or made ragged; SQLite cells set to NULL or text,
tables and columns dropped; YAML and JSON values retyped; and the bytes (truncation, stray
bytes, a damaged Parquet footer or SQLite page, UTF-16, nesting 1,000 deep). A file that
imports is then taken where the CLI takes it: `to_table`, `CalibrationMeta`, `write` and
`read` back.

CI runs `FUZZ_EXAMPLES` (default 100) examples per seed; a longer campaign:

    INFSIM_FUZZ_EXAMPLES=3000 .venv/bin/pytest tests/calibration/test_fuzz_importers.py
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infsim.calibration.profilers  # noqa: F401  (registers the profiler importers)
from infsim.calibration.importers import ImportOptions, import_paths
from infsim.cost import table as cal_table
from infsim.errors import InputError
from tests import fuzzing

FUZZ_EXAMPLES = int(os.environ.get("INFSIM_FUZZ_EXAMPLES", "100"))
SECONDS_PER_EXAMPLE = 30
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- values a mutation puts in a cell, a YAML/JSON value or an SQLite cell -------------------

CELLS = [
    "", "nan", "NaN", "inf", "-inf", "-1", "0", "0.5", "2.5", "1e400", "1e308", "-1e308",
    "99999999999999999999999", "9" * 5000, "abc", "True", "[1, 2]", "None", "null", "é",
    "1,5", " 7 ", "0x10",
]  # fmt: skip
VALUES: list[Any] = [
    None, True, False, "", "x", "12", -1, 0, 1, 2.5, 2**63, 10**30, 1e308, math.nan, math.inf,
    -math.inf, [], [None], [[1]], {}, {"a": [1]}, "fp3", "tp0",
]  # fmt: skip
SQL_VALUES: list[Any] = [None, "x", "", -1, 0, 2**62, -(2**62), 1.5, math.inf, b"\x00\xff"]


Data = st.DataObject | None
"""Hypothesis' data object, or None for the unmutated (valid) seed."""


def pick(data: Data, strategy: st.SearchStrategy, default: Any, label: str) -> Any:
    """A drawn choice, or `default` (no change) for the valid seed."""
    return default if data is None else data.draw(strategy, label=label)


def draw_cell(data: st.DataObject) -> str:
    return data.draw(st.one_of(st.sampled_from(CELLS), st.text(max_size=8)), label="cell")


def draw_value(data: st.DataObject) -> Any:
    return data.draw(
        st.one_of(st.sampled_from(VALUES), st.integers(), st.floats(), st.text(max_size=8)),
        label="value",
    )


def mutate_bytes(data: st.DataObject, raw: bytes, text: bool) -> bytes:
    ops = ["none", "none", "cut", "insert", "flip", "tail"]
    ops += ["utf16", "latin1", "deep"] if text else []
    op = data.draw(st.sampled_from(ops), label="bytes")
    at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="offset")
    if op == "cut":
        return raw[:at]
    if op == "insert":
        return raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if op == "flip" and raw:
        return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    if op == "tail" and raw:  # the end of the file: a Parquet footer, a CSV's last row
        at = max(len(raw) - 1 - data.draw(st.integers(0, min(64, len(raw) - 1))), 0)
        return raw[:at] + bytes([raw[at] ^ 0x5A]) + raw[at + 1 :]
    if op == "utf16":
        return raw.decode("utf-8", "replace").encode("utf-16")
    if op == "latin1":
        return raw[:at] + "é".encode("latin-1") + raw[at:]
    if op == "deep":
        return raw[:at] + b"[" * 1000 + b"]" * 1000 + raw[at:]
    return raw


# -- per-format inputs and their mutations ------------------------------------------------


def mutate_frame(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    """A table's cell, column type, column set or rows changed."""
    frame = frame.copy()
    column = data.draw(st.sampled_from(list(frame.columns)), label="column")
    op = data.draw(st.sampled_from(["cell", "cell", "type", "drop", "rows", "none"]))
    if op == "cell":
        row = data.draw(st.integers(0, len(frame) - 1), label="row")
        value = draw_value(data)
        frame[column] = frame[column].astype(object)
        frame.at[frame.index[row], column] = value
    elif op == "type":
        kind = data.draw(st.sampled_from(["str", "bool", "list", "nan", "inf", "huge", "neg"]))
        frame[column] = {
            "str": lambda s: s.astype(str),
            "bool": lambda s: s.astype(bool),
            "list": lambda s: [[v] for v in s],
            "nan": lambda s: [math.nan] * len(s),
            "inf": lambda s: [math.inf] * len(s),
            "huge": lambda s: [1e300] * len(s),
            "neg": lambda s: [-3] * len(s),
        }[kind](frame[column])
    elif op == "drop":
        frame = frame.drop(columns=column)
    elif op == "rows":
        frame = frame.iloc[: data.draw(st.integers(0, len(frame) - 1), label="keep rows")]
    return frame


def write_parquet(frame: pd.DataFrame, path: Path, duplicate: str | None = None) -> None:
    """Write `frame`; a column whose mixed cells Arrow cannot type is written as text."""
    arrays, names = [], []
    for column in frame.columns:
        try:
            arrays.append(pa.array(frame[column].tolist(), from_pandas=True))
        except (pa.ArrowException, OverflowError, ValueError, TypeError):
            arrays.append(pa.array([repr(v) for v in frame[column]]))
        names.append(str(column))
    if duplicate in names:
        arrays.append(arrays[names.index(duplicate)])
        names.append(duplicate)
    try:
        pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
    except pa.ArrowException:  # e.g. an empty struct: Parquet cannot hold it, write text
        arrays = [pa.array([repr(v) for v in a.to_pylist()]) if pa.types.is_nested(a.type) else a
                  for a in arrays]  # fmt: skip
        pq.write_table(pa.Table.from_arrays(arrays, names=names), path)


def aic_tables() -> dict[str, pd.DataFrame]:
    gemm = pd.DataFrame({"kernel_source": "vllm_default", "gemm_dtype": "bfloat16",
                         "m": [1, 2], "n": [4096, 4096], "k": [4096, 4096],
                         "latency": [0.01, 0.02]})  # fmt: skip
    attention = pd.DataFrame({"kernel_source": "flash", "batch_size": [1, 2], "isl": [128, 256],
                              "num_heads": 32, "num_key_value_heads": [8, 0], "head_dim": 128,
                              "attn_dtype": "bfloat16", "kv_cache_dtype": "fp8", "step": 0,
                              "window_size": [0, 0], "beam_width": 1,
                              "latency": [0.05, 0.09]})  # fmt: skip
    nccl = pd.DataFrame({"kernel_source": "nccl", "op_name": ["all_reduce", "alltoall"],
                         "nccl_dtype": "half", "num_gpus": [2, 8],
                         "message_size": [1024, 4096], "latency": [0.01, 0.03]})  # fmt: skip
    moe = pd.DataFrame({"kernel_source": "triton", "moe_dtype": "bfloat16",
                        "num_tokens": [1, 8], "hidden_size": 2048, "inter_size": 768, "topk": 8,
                        "num_experts": 128, "moe_tp_size": [1, 2], "moe_ep_size": [1, 1],
                        "distribution": "balanced", "latency": [0.1, 0.2]})  # fmt: skip
    return {
        "gemm/vllm/0.19.0/gemm_perf": gemm,
        "attention/vllm/0.19.0/context_attention_perf": attention,
        "comm/nccl/2.27.3/nccl_perf": nccl,
        "moe/vllm/0.19.0/moe_perf": moe,
    }


def write_aic(data: Data, root: Path) -> list[Path]:
    tables = aic_tables()
    target = pick(data, st.sampled_from(sorted(tables)), "gemm/vllm/0.19.0/gemm_perf", "table")
    whole = pick(data, st.booleans(), False, "import the system directory")
    paths = []
    for name, frame in tables.items():
        path = root / "h100_sxm" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        if name != target:
            write_parquet(frame, path)
            continue
        paths.append(path)
        if data is None:
            write_parquet(frame, path)
            continue
        duplicate = None
        if data.draw(st.integers(0, 9), label="duplicate a column?") == 0:
            duplicate = data.draw(st.sampled_from(list(frame.columns)), label="duplicate")
        write_parquet(mutate_frame(data, frame), path, duplicate)
        path.write_bytes(mutate_bytes(data, path.read_bytes(), text=False))
    return [root / "h100_sxm"] if whole else paths


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def mutate_csv(data: st.DataObject, text: str) -> str:
    """A cell replaced, a column dropped, rows cut, or a row made ragged."""
    lines = text.splitlines()
    rows = [line.split(",") for line in lines]
    op = data.draw(st.sampled_from(["cell", "cell", "drop", "cut", "ragged", "none"]))
    if op == "cell" and len(rows) > 1:
        i = data.draw(st.integers(0, len(rows) - 1), label="row")
        j = data.draw(st.integers(0, len(rows[i]) - 1), label="field")
        rows[i][j] = draw_cell(data).replace(",", ";").replace("\n", " ")
    elif op == "drop":
        j = data.draw(st.integers(0, len(rows[0]) - 1), label="column")
        rows = [[v for k, v in enumerate(r) if k != j] for r in rows]
    elif op == "cut":
        rows = rows[: data.draw(st.integers(0, len(rows)), label="keep lines")]
    elif op == "ragged" and len(rows) > 1:
        i = data.draw(st.integers(1, len(rows) - 1), label="row")
        rows[i] = rows[i][:-1] if data.draw(st.booleans()) else [*rows[i], "7"]
    return "\n".join(",".join(r) for r in rows) + "\n"


def write_text_file(data: Data, path: Path, text: str, mutate: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = text.encode()
    if mutate and data is not None:
        raw = mutate_bytes(data, mutate_csv(data, text).encode(), text=True)
    path.write_bytes(raw)


VIDUR_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj",
             "input_layernorm", "post_attention_layernorm", "attn_rope", "mlp_act", "add",
             "emb")  # fmt: skip


def vidur_mlp() -> str:
    frame = pd.DataFrame({"n_head": 32, "n_kv_head": 8, "n_embd": 4096, "n_expanded_embd": 14336,
                          "use_gated_mlp": True, "num_tokens": [1, 64],
                          "num_tensor_parallel_workers": [1, 2]})  # fmt: skip
    for op in VIDUR_OPS:
        frame[f"time_stats.{op}.median"] = [0.1, 0.2]
    return csv_text(frame)


def vidur_network() -> str:
    return csv_text(pd.DataFrame({"time_stats.all_reduce.median": [0.04, 0.05],
                                  "rank": 0, "num_workers": [2, 16], "size": [2048, 10240],
                                  "collective": "all_reduce", "devices_per_node": 8}))  # fmt: skip


def write_vidur(data: Data, root: Path) -> list[Path]:
    mlp = root / "compute/a100/fuzz-org/fuzz-model/mlp.csv"
    net = root / "network/a100_dgx/all_reduce.csv"
    target = pick(data, st.sampled_from(["mlp", "net"]), "mlp", "file")
    write_text_file(data, mlp, vidur_mlp(), target == "mlp")
    write_text_file(data, net, vidur_network(), target == "net")
    return [mlp if target == "mlp" else net]


LSS_META = {"vllm_version": "0.19.0", "hardware": "RTXPRO6000",
            "profiled_at": "2026-04-24T12:44:27+00:00", "model": "meta-llama/Llama-3.1-8B",
            "variant": "bf16", "tp_degrees": [1]}  # fmt: skip
LSS_FILES = {
    "dense.csv": "layer,tokens,time_us\nact_fn,1,2.6\nqkv_proj,1,9.5\nlayernorm,2,3.0\n",
    "per_sequence.csv": "layer,sequences,time_us\nlm_head,1,714.0\nsampler,2,40.5\n",
    "attention.csv": "prefill_chunk,kv_prefill,n_decode,kv_decode,time_us\n"
    "0,0,1,16,8.3\n16,0,0,0,9.1\n16,32,2,64,12.0\n",
}


def mutate_yaml(data: st.DataObject, meta: dict[str, Any]) -> str:
    meta = dict(meta)
    op = data.draw(st.sampled_from(["value", "drop", "list", "none"]), label="yaml")
    key = data.draw(st.sampled_from(sorted(meta)), label="key")
    if op == "value":
        meta[key] = draw_value(data)
    elif op == "drop":
        del meta[key]
    elif op == "list":
        return yaml.safe_dump([meta])
    try:
        return yaml.safe_dump(meta)
    except yaml.YAMLError:
        return yaml.safe_dump({k: repr(v) for k, v in meta.items()})


def write_lss(data: Data, root: Path) -> list[Path]:
    tp = pick(data, st.sampled_from(["tp1", "tp1", "tp1", "tp0", "tp99999", "tpx"]), "tp1", "tp")
    bundle = root / "RTXPRO6000/meta-llama/Llama-3.1-8B/bf16"
    target = pick(data, st.sampled_from(["meta.yaml", *LSS_FILES]), "dense.csv", "file")
    (bundle / tp).mkdir(parents=True)
    raw = yaml.safe_dump(LSS_META).encode()
    if target == "meta.yaml" and data is not None:
        raw = mutate_bytes(data, mutate_yaml(data, LSS_META).encode(), text=True)
    (bundle / "meta.yaml").write_bytes(raw)
    for name, text in LSS_FILES.items():
        write_text_file(data, bundle / tp / name, text, name == target)
    whole = pick(data, st.booleans(), True, "whole bundle")
    return [bundle] if whole else [bundle / tp / (target if target != "meta.yaml" else "dense.csv")]


APEX = (
    "gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\n"
    "H100-SXM-80GB,1,8,half,0,14.0\nH100-SXM-80GB,1,8,half,4,15.0\n"
    "H100-SXM-80GB,2,8,float,1024,80.5\n"
)
NCCL_STDOUT = """\
# nThread 1 nGpus 2 minBytes 1024 maxBytes 4096 step: 2(factor) warmup iters: 5 iters: 20
#  Rank  0 Group  0 Pid  41001 on     node01 device  0 [0x18] NVIDIA H100 80GB HBM3
#  Rank  1 Group  0 Pid  41002 on     node01 device  1 [0x2a] NVIDIA H100 80GB HBM3
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
        1024           512      half     sum      -1    10.50    0.10    0.15      0    10.25    0.10    0.15      0
        2048          1024      half     sum      -1    11.00    0.19    0.28      0    10.75    0.19    0.29      0
"""  # noqa: E501  (verbatim nccl-tests layout)


def mutate_words(data: st.DataObject, text: str) -> str:
    """nccl-tests stdout: a whitespace-separated field replaced, or a line dropped."""
    lines = text.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    words = lines[i].split()
    if data.draw(st.booleans(), label="drop the line") or not words:
        del lines[i]
    else:
        words[data.draw(st.integers(0, len(words) - 1))] = draw_cell(data).replace("\n", " ")
        lines[i] = "  ".join(words)
    return "\n".join(lines) + "\n"


def write_nccl(data: Data, root: Path) -> list[Path]:
    if pick(data, st.booleans(), True, "apex csv"):
        path = root / "H100-SXM-80GB" / "all_reduce.csv"
        write_text_file(data, path, APEX, True)
        return [path.parent] if pick(data, st.booleans(), False, "directory") else [path]
    path = root / "all_reduce_perf.txt"
    text = NCCL_STDOUT
    if data is not None:
        text = mutate_words(data, text) if data.draw(st.booleans(), label="words") else text
        path.write_bytes(mutate_bytes(data, text.encode(), text=True))
    else:
        path.write_text(text)
    return [path]


def kineto_events() -> list[dict[str, Any]]:
    def op(name: str, ts: float, dur: float, dims: list | None = None, cat: str = "cpu_op",
           **args: Any) -> dict[str, Any]:  # fmt: skip
        if dims is not None:
            args |= {"Input Dims": dims, "Input type": ["c10::BFloat16"] * len(dims)}
        return {"ph": "X", "cat": cat, "name": name, "pid": 100, "tid": 1, "ts": ts,
                "dur": dur, "args": args}  # fmt: skip

    kernel = {"ph": "X", "cat": "kernel", "name": "sm90_gemm", "pid": 0, "tid": 7, "ts": 200,
              "dur": 12.5, "args": {"correlation": 7, "device": 0}}  # fmt: skip
    return [
        op("execute_context_1(10)_generation_4(4)", 0, 900, cat="user_annotation"),
        op("aten::linear", 10, 100, [[14, 512], [768, 512], [768]]),
        op("cudaLaunchKernel", 20, 5, cat="cuda_runtime", correlation=7),
        kernel,
        {"ph": "f", "cat": "ac2g", "id": 7, "pid": 0, "tid": 7, "ts": 200, "bp": "e"},
        op("_C::rms_norm", 120, 5, [[14, 512], [14, 512], [512], []]),
        op("nccl:all_reduce", 130, 8, [[14, 512]]),
        op("aten::scaled_dot_product_attention", 140, 9, [[1, 8, 14, 64], [1, 8, 14, 64]]),
    ]


def tree_paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from tree_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from tree_paths(item, (*prefix, index))


def mutate_tree(data: st.DataObject, tree: Any) -> Any:
    tree = json.loads(json.dumps(tree))
    path = data.draw(st.sampled_from(list(tree_paths(tree))[1:]), label="path")
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    op = data.draw(st.sampled_from(["replace", "replace", "drop", "wrap"]), label="tree")
    if op == "replace":
        parent[path[-1]] = draw_value(data)
    elif op == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = [parent[path[-1]]]
    return tree


def write_kineto(data: Data, root: Path) -> list[Path]:
    trace: Any = {"schemaVersion": 1, "deviceProperties": [{"name": "NVIDIA H100 80GB HBM3"}],
                  "distributedInfo": {"world_size": 2}, "traceEvents": kineto_events()}  # fmt: skip
    raw = json.dumps(trace).encode()
    gz = pick(data, st.booleans(), True, "gzip")
    if data is not None:
        for _ in range(data.draw(st.integers(0, 3), label="tree mutations")):
            trace = mutate_tree(data, trace)
        raw = mutate_bytes(data, json.dumps(trace, allow_nan=True).encode(), text=True)
    path = root / ("rank0.pt.trace.json.gz" if gz else "rank0.pt.trace.json")
    if gz:
        raw = gzip.compress(raw)
        if data is not None and data.draw(st.booleans(), label="damage the gzip"):
            raw = mutate_bytes(data, raw, text=False)
    path.write_bytes(raw)
    return [path]


KERN_SUM = """Generating SQLite file report.sqlite from report.nsys-rep
Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),Name
61.2,"1,234,000",100,"12,340.0","12,000.0","11,000","15,000",300.1,sm90_xmma_gemm_bf16
10.0,"200,000",100,"2,000.0","1,900.0","1,800","2,400",30.0,vllm::rms_norm_kernel
5.0,"100,000",50,"2,000.0","2,100.0","1,900","2,300",20.0,act_and_mul_kernel
"""


def write_kern_sum(data: Data, root: Path) -> list[Path]:
    path = root / "report_cuda_gpu_kern_sum.csv"
    sidecar = root / "report_cuda_gpu_kern_sum.csv.shape.json"
    path.write_text(KERN_SUM)
    sidecar.write_text('{"num_tokens": 8}')
    if data is None:
        return [path]
    if data.draw(st.booleans(), label="mutate the sidecar"):
        shape = mutate_tree(data, {"num_tokens": 8})
        sidecar.write_bytes(mutate_bytes(data, json.dumps(shape).encode(), text=True))
    else:
        text = mutate_words(data, KERN_SUM) if data.draw(st.booleans(), label="words") else KERN_SUM
        path.write_bytes(mutate_bytes(data, text.encode(), text=True))
    return [path]


SQL_TABLES = {
    "StringIds": ("id", "value"),
    "CUPTI_ACTIVITY_KIND_KERNEL": ("start", "end", "deviceId", "demangledName", "shortName"),
    "NVTX_EVENTS": ("start", "end", "eventType", "text", "textId"),
}


def write_sqlite(data: Data, root: Path) -> list[Path]:
    path = root / "report.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        PRAGMA synchronous = OFF;
        PRAGMA journal_mode = MEMORY;
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER, end INTEGER, deviceId INTEGER,
            demangledName INTEGER, shortName INTEGER);
        CREATE TABLE NVTX_EVENTS (start INTEGER, end INTEGER, eventType INTEGER, text TEXT,
            textId INTEGER);
        INSERT INTO StringIds VALUES (1, 'vllm::rms_norm_kernel'), (2, 'sm90_xmma_gemm_bf16'),
            (3, 'execute_context_0(0)_generation_8(8)');
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (0, 2000, 0, 1, 1), (500, 9000, 0, 2, 2),
            (1000, 3001, 0, 1, 1);
        INSERT INTO NVTX_EVENTS VALUES (0, 5000000, 59, NULL, 3), (6000000, 10000000, 59, NULL, 3),
            (0, 100, 59, 'other range', NULL);
        """
    )
    if data is not None:
        _mutate_sqlite(data, con)
    con.commit()
    con.close()
    if data is not None:
        path.write_bytes(mutate_bytes(data, path.read_bytes(), text=False))
        if data.draw(st.integers(0, 4), label="shape file?") == 0:
            (root / "report.sqlite.shape.json").write_text('{"num_tokens": 8}')
    return [path]


def _mutate_sqlite(data: st.DataObject, con: sqlite3.Connection) -> None:
    table = data.draw(st.sampled_from(sorted(SQL_TABLES)), label="table")
    column = data.draw(st.sampled_from(SQL_TABLES[table]), label="column")
    op = data.draw(st.sampled_from(["cell", "cell", "drop table", "drop column", "none"]))
    if op == "cell":
        value = data.draw(st.sampled_from(SQL_VALUES), label="sql value")
        rowid = data.draw(st.integers(1, 3), label="rowid")
        with contextlib.suppress(sqlite3.IntegrityError):  # an INTEGER PRIMARY KEY
            con.execute(f"UPDATE {table} SET [{column}] = ? WHERE rowid = ?", (value, rowid))
    elif op == "drop table":
        con.execute(f"DROP TABLE {table}")
    elif op == "drop column":
        with contextlib.suppress(sqlite3.OperationalError):  # a primary key stays
            con.execute(f"ALTER TABLE {table} DROP COLUMN [{column}]")


@dataclass(frozen=True)
class Seed:
    name: str
    fmt: str
    write: Callable[[Data, Path], list[Path]]
    options: dict[str, Any]


SEEDS = [
    Seed("aiconfigurator", "aiconfigurator", write_aic, {}),
    Seed("vidur", "vidur", write_vidur, {}),
    Seed("llmservingsim", "llmservingsim", write_lss, {}),
    Seed("nccl-tests", "nccl-tests", write_nccl, {}),
    Seed("torch-profiler", "torch-profiler", write_kineto, {}),
    Seed("nsys-kern-sum", "nsys-kern-sum", write_kern_sum, {"device": "H100-SXM"}),
    Seed("nsys-sqlite", "nsys-sqlite", write_sqlite, {"device": "H100-SXM"}),
]


# -- the properties ------------------------------------------------------------------------


def bounded(seconds: int = SECONDS_PER_EXAMPLE) -> contextlib.AbstractContextManager[None]:
    """`tests.fuzzing.bounded` at this module's bound."""
    return fuzzing.bounded(seconds)


def refused(err: InputError, root: Path) -> None:
    message = str(err)
    assert str(root) in message or "ImportOptions" in message, message  # names the file
    assert "\n" not in message, message  # one paragraph


def import_and_write(seed: Seed, paths: list[Path], out: Path) -> None:
    """What `infsim calibrate import` does: import, normalise, describe, write; then read."""
    result = import_paths(seed.fmt, paths, ImportOptions(**seed.options))
    table = cal_table.to_table(result.frame, ", ".join(map(str, paths)))
    fields = {k: v for k, v in result.meta.items() if k in cal_table.CalibrationMeta.model_fields}
    meta = cal_table.CalibrationMeta(name="fuzz", importer="fuzz", provenance=result.provenance,
                                     **fields)  # fmt: skip
    cal_table.write(out, table, meta)
    cal_table.read(out)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
def test_seeds_import(seed: Seed, tmp_path: Path) -> None:
    """Unmutated, every seed imports (so the mutations start from valid files)."""
    import_and_write(seed, seed.write(None, tmp_path), tmp_path / "out")


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
@FUZZ
@given(data=st.data())
def test_mutated_exports_import_or_refuse(seed: Seed, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="infsim-fuzz-") as folder:
        root = Path(folder)
        paths = seed.write(data, root)
        with bounded():
            try:
                import_and_write(seed, paths, root / "out")
            except InputError as err:
                refused(err, root)


def calibration_dir(root: Path) -> Path:
    frame = pd.DataFrame({"op": ["gemm", "norm"], "m": [1, None], "n": [4096, None],
                          "k": [4096, None], "num_tokens": [None, 8], "variant": "x",
                          "time_s": [1e-5, 2e-6]})  # fmt: skip
    table = cal_table.to_table(frame, "seed")
    meta = cal_table.CalibrationMeta(name="t", device="H100-SXM", engine="vllm", source="s",
                                     profiler="p", importer="i")  # fmt: skip
    out = root / "t"
    cal_table.write(out, table, meta)
    return out


@FUZZ
@given(data=st.data())
def test_damaged_calibration_tables_read_or_refuse(data: st.DataObject) -> None:
    """`infsim.cost.table.read` of a mutated meta.yaml or ops.parquet."""
    with tempfile.TemporaryDirectory(prefix="infsim-fuzz-") as folder:
        out = calibration_dir(Path(folder))
        if data.draw(st.booleans(), label="meta.yaml"):
            meta = yaml.safe_load((out / "meta.yaml").read_text())
            text = mutate_yaml(data, meta)
            (out / "meta.yaml").write_bytes(mutate_bytes(data, text.encode(), text=True))
        else:
            frame = pq.read_table(out / "ops.parquet").to_pandas()
            if data.draw(st.booleans(), label="cells"):
                write_parquet(mutate_frame(data, frame), out / "ops.parquet")
            raw = (out / "ops.parquet").read_bytes()
            (out / "ops.parquet").write_bytes(mutate_bytes(data, raw, text=False))
        with bounded():
            try:
                cal_table.read(out)
            except InputError as err:
                refused(err, Path(folder))


@settings(FUZZ, max_examples=max(FUZZ_EXAMPLES // 5, 20))
@given(data=st.data(), seed=st.sampled_from(SEEDS))
def test_calibrate_import_cli_exits_0_or_2(data: st.DataObject, seed: Seed) -> None:
    """The whole `infsim calibrate import` on mutated exports: a table (0) or a message (2)."""
    from infsim.cli import main

    with tempfile.TemporaryDirectory(prefix="infsim-fuzz-") as folder:
        paths = seed.write(data, Path(folder))
        args = ["calibrate", "import", seed.fmt, *map(str, paths), "--name", "fuzz",
                "-o", str(Path(folder) / "out")]  # fmt: skip
        for key, value in seed.options.items():
            args += [f"--{key}", str(value)]
        with bounded():
            result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 2), result.output
    assert "internal error" not in result.output, result.output
