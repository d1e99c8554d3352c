"""NVIDIA AIConfigurator perf databases → calibration rows.

Layout (the repository's and the `aiconfigurator-core` wheel's `systems/data/`):

    <system>/<op>/<framework>/<version>/<table>.parquet   (+ collection_meta.yaml)
    h100_sxm/gemm/vllm/0.19.0/gemm_perf.parquet

A path may be a file or any directory of that tree (a system directory is the usual one);
files found under a directory are filtered by `engine`/`engine_version`, and must then
belong to one framework and version (else the error lists the choices). NCCL tables are
engine-independent: from a directory, only the newest NCCL version is taken. Latencies are
milliseconds per op on one GPU. Mapping (table → op; shape columns):

    gemm_perf                   gemm; m, n, k; variant = kernel_source
    context_attention_perf      attention_prefill; batch_size, query_len = isl,
                                kv_len = isl + step (step is 0: no cached prefix)
    generation_attention_perf   attention_decode; kv_len = isl + step (isl = 1, step =
                                2^j - 1: AIC's loader keys decode by s = isl + step, the
                                sequence length including the new token)
      both: rows with window_size > 0 (sliding window) or beam_width > 1 are dropped;
      num_key_value_heads 0 means "= num_heads"; dtype = attn_dtype, kv_dtype =
      kv_cache_dtype; heads are per rank
    nccl_perf                   all_reduce / all_gather / reduce_scatter / all_to_all;
                                message_bytes = message_size (elements) × dtype bytes;
                                variant = "nccl"
    custom_allreduce_perf       all_reduce; message_bytes as above; variant = backend
    moe_perf                    moe; tp = moe_tp_size; only moe_ep_size = 1 rows (the table
                                has no expert-parallel column); variant =
                                "<kernel_source>/<distribution>" (balanced, power_law_…)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from infsim.calibration.importers import ImportOptions, ImportResult, importers
from infsim.calibration.importers._common import (
    SOURCE,
    device_name,
    dtype_column,
    file_provenance,
    numbers,
    one_device,
    read_parquet,
    text_column,
    version_key,
)
from infsim.catalog import precision
from infsim.errors import InputError

NCCL = "nccl"
_ATTENTION = ("batch_size", "isl", "num_heads", "num_key_value_heads", "head_dim")
_ATTENTION += ("attn_dtype", "kv_cache_dtype", "step")
_COLLECTIVE_OPS = {
    "all_reduce": "all_reduce",
    "all_gather": "all_gather",
    "reduce_scatter": "reduce_scatter",
    "alltoall": "all_to_all",
    "all_to_all": "all_to_all",
}


def aiconfigurator_data_dir() -> Path | None:
    """`systems/data` of an installed `aiconfigurator-core` package, or None.

    Found through the import system without importing the package (its import pulls heavy
    dependencies), so any copy on `sys.path` works.
    """
    try:
        spec = importlib.util.find_spec("aiconfigurator_core")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        data = Path(location) / "systems" / "data"
        if data.is_dir():
            return data
    return None


def _gemm(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    return pd.DataFrame(
        {"op": "gemm", "dtype": dtype_column(raw["gemm_dtype"], path), "m": raw["m"],
         "n": raw["n"], "k": raw["k"], "variant": raw["kernel_source"]}
    )  # fmt: skip


def _attention(raw: pd.DataFrame, path: Path, op: str) -> pd.DataFrame:
    full = np.ones(len(raw), dtype=bool)
    if "window_size" in raw.columns:
        full &= raw["window_size"].fillna(0).to_numpy() == 0
    if "beam_width" in raw.columns:
        full &= raw["beam_width"].fillna(1).to_numpy() == 1
    raw = raw[full]
    kv_heads = raw["num_key_value_heads"].where(raw["num_key_value_heads"] > 0, raw["num_heads"])
    frame = pd.DataFrame(
        {"op": op, "dtype": dtype_column(raw["attn_dtype"], path),
         "kv_dtype": dtype_column(raw["kv_cache_dtype"], path),
         "batch_size": raw["batch_size"], "kv_len": raw["isl"] + raw["step"],
         "num_heads": raw["num_heads"], "num_kv_heads": kv_heads,
         "head_dim": raw["head_dim"], "variant": raw["kernel_source"]}
    )  # fmt: skip
    if op == "attention_prefill":
        frame["query_len"] = raw["isl"]
    return frame


def _collective(raw: pd.DataFrame, path: Path, dtype: str, variant: pd.Series) -> pd.DataFrame:
    unknown = sorted(set(raw["op_name"]) - set(_COLLECTIVE_OPS))
    if unknown:
        raise InputError(f"{path}: unknown collective(s) {unknown}; known: {list(_COLLECTIVE_OPS)}")
    dtypes = dtype_column(raw[dtype], path)
    element_bytes = dtypes.map(precision.bytes_per_element)
    return pd.DataFrame(
        {"op": raw["op_name"].map(_COLLECTIVE_OPS), "dtype": dtypes,
         "message_bytes": raw["message_size"] * element_bytes,
         "num_devices": raw["num_gpus"], "variant": variant}
    )  # fmt: skip


def _nccl(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    return _collective(raw, path, "nccl_dtype", pd.Series(NCCL, index=raw.index))


def _custom_allreduce(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    raw = raw.assign(op_name="all_reduce")
    variant = raw["backend"] if "backend" in raw.columns else raw["kernel_source"]
    return _collective(raw, path, "allreduce_dtype", variant.str.lower())


def _moe(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    raw = raw[raw["moe_ep_size"] == 1]
    distribution = raw["distribution"] if "distribution" in raw.columns else "balanced"
    return pd.DataFrame(
        {"op": "moe", "dtype": dtype_column(raw["moe_dtype"], path),
         "num_tokens": raw["num_tokens"], "hidden_size": raw["hidden_size"],
         "inter_size": raw["inter_size"], "num_experts": raw["num_experts"],
         "topk": raw["topk"], "tp": raw["moe_tp_size"],
         "variant": raw["kernel_source"] + "/" + distribution}
    )  # fmt: skip


Convert = Callable[[pd.DataFrame, Path], pd.DataFrame]
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], Convert]] = {
    "gemm_perf": (("gemm_dtype", "m", "n", "k"), (), _gemm),
    "context_attention_perf": (
        _ATTENTION, ("window_size", "beam_width"),
        lambda raw, path: _attention(raw, path, "attention_prefill")),
    "generation_attention_perf": (
        _ATTENTION, ("window_size", "beam_width"),
        lambda raw, path: _attention(raw, path, "attention_decode")),
    "nccl_perf": (("op_name", "nccl_dtype", "num_gpus", "message_size"), (), _nccl),
    "custom_allreduce_perf": (
        ("allreduce_dtype", "num_gpus", "message_size"), ("backend",), _custom_allreduce),
    "moe_perf": (
        ("moe_dtype", "num_tokens", "hidden_size", "inter_size", "topk", "num_experts",
         "moe_tp_size", "moe_ep_size"), ("distribution",), _moe),
}  # fmt: skip
"""Table (file stem) → (required columns, optional columns, converter)."""


def _layout(path: Path) -> tuple[str, str, str]:
    """(system, framework, version) of a file in the standard layout ('' where absent)."""
    parts = path.resolve().parts
    if len(parts) >= 5:
        return parts[-5], parts[-3].lower(), parts[-2]
    return "", "", ""


def _expand(paths: list[Path], options: ImportOptions) -> list[Path]:
    """Files to read: explicit files as given; directories filtered by engine/version."""
    files = [p for p in paths if p.is_file()]
    found = [f for p in paths if p.is_dir() for f in sorted(p.rglob("*.parquet"))]
    found = [f for f in found if f.stem in TABLES]
    if options.engine:
        found = [f for f in found if _layout(f)[1] in (options.engine.lower(), NCCL)]
    if options.engine_version:
        found = [
            f for f in found if _layout(f)[1] == NCCL or _layout(f)[2] == options.engine_version
        ]
    engines = sorted({_layout(f)[1:] for f in found if _layout(f)[1] != NCCL})
    if len(engines) > 1:
        listing = ", ".join(f"{e} {v}" for e, v in engines)
        raise InputError(
            f"{', '.join(map(str, paths))}: tables of several engines/versions ({listing}); "
            "choose one with engine and engine_version"
        )
    nccl = sorted({_layout(f)[2] for f in found if _layout(f)[1] == NCCL}, key=version_key)
    found = [f for f in found if _layout(f)[1] != NCCL or _layout(f)[2] == nccl[-1]]
    if not files and not found:
        raise InputError(
            f"{', '.join(map(str, paths))}: no AIConfigurator tables "
            f"({', '.join(TABLES)}) for engine={options.engine} version={options.engine_version}"
        )
    return files + found


TEXT = frozenset(
    {
        "gemm_dtype",
        "attn_dtype",
        "kv_cache_dtype",
        "op_name",
        "nccl_dtype",
        "allreduce_dtype",
        "moe_dtype",
        "kernel_source",
        "backend",
        "distribution",
    }
)
"""Columns of text; every other column read is numeric."""
OPTIONAL_NUMBERS = frozenset({"window_size", "beam_width"})
"""Numeric columns whose blank cells mean the default (0, 1)."""


def _typed(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Every column checked for its kind, numbers as floats: the converters then only do
    arithmetic (a text `m` or a list-valued cell is an error naming column and row)."""
    out = {}
    for column in raw.columns:
        if column in TEXT:
            out[column] = text_column(raw, column, path)
        else:
            out[column] = numbers(raw, column, path, allow_null=column in OPTIONAL_NUMBERS)
    return pd.DataFrame(out, index=raw.index)


def _read(path: Path) -> pd.DataFrame:
    if path.stem not in TABLES:
        raise InputError(f"{path}: not an AIConfigurator table; known: {', '.join(TABLES)}")
    required, optional, convert = TABLES[path.stem]
    raw = _typed(read_parquet(path, (*required, "kernel_source", "latency"), optional), path)
    latency_ms = raw["latency"].to_numpy()
    frame = convert(raw, path)
    frame["time_s"] = latency_ms[raw.index.get_indexer(frame.index)] * 1e-3
    frame[SOURCE] = str(path)
    return frame


@importers.register("aiconfigurator")
def import_aiconfigurator(paths: list[Path], options: ImportOptions) -> ImportResult:
    files = _expand(paths, options)
    frames = [_read(f) for f in files]
    device = one_device({f: device_name(_layout(f)[0]) for f in files}, options.device)
    engines = sorted({_layout(f)[1:] for f in files if _layout(f)[1] != NCCL})
    engine, version = engines[0] if len(engines) == 1 else (NCCL, _layout(files[0])[2])
    meta: dict[str, object] = {
        "device": device,
        "engine": options.engine or engine,
        "engine_version": options.engine_version or version,
        "source": "NVIDIA AIConfigurator perf database (github.com/ai-dynamo/aiconfigurator)",
        "profiler": "AIConfigurator collector (CUDA-graph kernel timing, per op on one GPU)",
        "licence": "Apache-2.0",
        "notes": (
            "sliding-window and beam>1 attention rows dropped; MoE rows with expert "
            "parallelism (moe_ep_size > 1) dropped; decode kv_len = isl + step",
        ),
    }
    provenance = file_provenance(files, frames)
    return ImportResult(frame=pd.concat(frames, ignore_index=True), meta=meta,
                        provenance=provenance)  # fmt: skip
