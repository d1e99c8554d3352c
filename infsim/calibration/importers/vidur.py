"""Vidur profiling CSVs → calibration rows.

    compute/<gpu>/<org>/<model>/mlp.csv       per-layer ops vs num_tokens and TP (one rank)
    network/<gpu>_<topology>/<collective>.csv all_reduce.csv, send_recv.csv

Times are `time_stats.<op>.median`, milliseconds. Shapes come from the CSV's own model
columns (head_dim = n_embd / n_head, per-rank sizes divided by TP = num_tensor_parallel_workers,
KV heads at least one per rank) and are checked against the catalog model when the
catalog knows it. Mapping (m = num_tokens):

    attn_pre_proj    gemm n = (n_head + 2·n_kv_head)·head_dim / tp, k = n_embd
    attn_post_proj   gemm n = n_embd, k = n_head·head_dim / tp
    mlp_up_proj      gemm n = (2 if use_gated_mlp else 1)·n_expanded_embd / tp, k = n_embd
    mlp_down_proj    gemm n = n_embd, k = n_expanded_embd / tp
    input_layernorm, post_attention_layernorm → norm; attn_rope → rotary;
    mlp_act → activation; add → elementwise; emb → embedding   (num_tokens)

variant = the Vidur op name. dtype float16 (Vidur profiles in fp16). Collectives: size is
bytes, num_workers → num_devices; only the lowest rank's rows are kept (the staged files
hold rank 0 only); variant "nccl" within a node, "nccl/<n>_nodes" when the workers span n
nodes (devices_per_node < num_workers). Device: the first `_` part of the GPU folder
(a100 → A100-80GB, h100 → H100-SXM).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from infsim.calibration.importers import ImportOptions, ImportResult, importers
from infsim.calibration.importers._common import (
    SOURCE,
    device_name,
    file_provenance,
    numbers,
    one_device,
    read_csv,
    show,
    text_column,
)
from infsim.catalog.model import load_model
from infsim.errors import InputError

DTYPE = "float16"
PER_TOKEN = {
    "input_layernorm": "norm",
    "post_attention_layernorm": "norm",
    "attn_rope": "rotary",
    "mlp_act": "activation",
    "add": "elementwise",
    "emb": "embedding",
}
NETWORK = ("all_reduce", "send_recv")
GATED = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
MODEL_COLUMNS = ("n_head", "n_kv_head", "n_embd", "n_expanded_embd", "use_gated_mlp")
MODEL_COLUMNS += ("num_tokens", "num_tensor_parallel_workers")


def _median(raw: pd.DataFrame, op: str, path: Path) -> np.ndarray:
    column = f"time_stats.{op}.median"
    if column not in raw.columns:
        raise InputError(f"{path}: missing column {column!r} (milliseconds)")
    return numbers(raw, column, path) * 1e-3


def _gemm_shapes(raw: pd.DataFrame, path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    heads, kv_heads, hidden, inter = (
        numbers(raw, c, path, positive=True, integral=True) for c in MODEL_COLUMNS[:4]
    )
    tp = numbers(raw, "num_tensor_parallel_workers", path, positive=True, integral=True)
    flags = [str(v).strip().lower() for v in raw["use_gated_mlp"].to_numpy(dtype=object)]
    bad = [i for i, flag in enumerate(flags) if flag not in GATED]
    if bad:
        raise InputError(
            f"{path}: column 'use_gated_mlp' row {bad[0]}: expected True or False, got "
            f"{show(raw['use_gated_mlp'].iloc[bad[0]])}"
        )
    gated = np.asarray([GATED[flag] for flag in flags])
    head_dim = hidden // heads
    kv_local = np.maximum(kv_heads // tp, 1)
    return {
        "attn_pre_proj": ((heads / tp + 2 * kv_local) * head_dim, hidden),
        "attn_post_proj": (hidden, heads * head_dim / tp),
        "mlp_up_proj": (np.where(gated, 2, 1) * inter / tp, hidden),
        "mlp_down_proj": (hidden, inter / tp),
    }


def _check_catalog(raw: pd.DataFrame, path: Path) -> None:
    """The CSV's model columns must agree with the catalog model of the same name."""
    org, model = path.parent.parent.name, path.parent.name
    for name in (f"{org}/{model}", model):
        try:
            spec = load_model(name)
        except InputError:
            continue
        expected = {
            "n_head": spec.num_attention_heads,
            "n_kv_head": spec.num_kv_heads,
            "n_embd": spec.hidden_size,
            "n_expanded_embd": spec.intermediate_size,
        }
        for column, value in expected.items():
            found = sorted({int(x) for x in numbers(raw, column, path)})
            if found != [value]:
                raise InputError(
                    f"{path}: {column} {found} disagrees with catalog model {spec.name!r} ({value})"
                )
        return


def _read_mlp(path: Path) -> pd.DataFrame:
    raw = read_csv(path, MODEL_COLUMNS)
    _check_catalog(raw, path)
    tokens = numbers(raw, "num_tokens", path, positive=True, integral=True)
    tp = numbers(raw, "num_tensor_parallel_workers", path, positive=True, integral=True)
    frames = []
    for op, (n, k) in _gemm_shapes(raw, path).items():
        frames.append(pd.DataFrame({"op": "gemm", "m": tokens, "n": n, "k": k, "tp": tp,
                                    "variant": op, "time_s": _median(raw, op, path)}))  # fmt: skip
    for source_op, op in PER_TOKEN.items():
        frames.append(pd.DataFrame({"op": op, "num_tokens": tokens, "tp": tp,
                                    "hidden_size": raw["n_embd"], "variant": source_op,
                                    "time_s": _median(raw, source_op, path)}))  # fmt: skip
    return pd.concat(frames, ignore_index=True).assign(dtype=DTYPE)


def _read_network(path: Path) -> pd.DataFrame:
    raw = read_csv(path, ("collective", "num_workers", "size", "devices_per_node"))
    if "rank" in raw.columns:
        rank = numbers(raw, "rank", path, integral=True)
        raw = raw[rank == rank.min()]
    ops = sorted(set(text_column(raw, "collective", path)))
    if len(ops) != 1 or ops[0] not in NETWORK:
        raise InputError(f"{path}: expected one collective (all_reduce, send_recv), got {ops}")
    workers = numbers(raw, "num_workers", path, positive=True, integral=True)
    nodes = workers // np.maximum(numbers(raw, "devices_per_node", path, integral=True), 1)
    variant = np.where(nodes > 1, [f"nccl/{int(n)}_nodes" for n in nodes], "nccl")
    return pd.DataFrame(
        {"op": ops[0], "dtype": DTYPE, "message_bytes": numbers(raw, "size", path),
         "num_devices": workers, "variant": variant,
         "time_s": _median(raw, ops[0], path)}
    )  # fmt: skip


def _files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_file():
            files.append(path)
        else:
            files += [f for f in sorted(path.rglob("*.csv")) if f.stem in (*NETWORK, "mlp")]
    if not files:
        raise InputError(f"{', '.join(map(str, paths))}: no Vidur mlp.csv or network CSVs")
    return list(dict.fromkeys(files))


def _device(path: Path) -> str | None:
    """compute/<gpu>/<org>/<model>/mlp.csv or network/<gpu>_<topology>/<x>.csv."""
    if len(path.parts) <= 3:
        return None
    folder = path.parents[2].name if path.name == "mlp.csv" else path.parent.name
    return device_name(folder.split("_")[0])


@importers.register("vidur")
def import_vidur(paths: list[Path], options: ImportOptions) -> ImportResult:
    files = _files(paths)
    frames = [
        (_read_mlp(f) if f.name == "mlp.csv" else _read_network(f)).assign(**{SOURCE: str(f)})
        for f in files
    ]
    meta: dict[str, object] = {
        "device": one_device({f: _device(f) for f in files}, options.device),
        "engine": options.engine or "sarathi-serve",
        "engine_version": options.engine_version or "",
        "source": "Vidur profiling data (github.com/microsoft/vidur, data/profiling)",
        "profiler": "Vidur profiler (CUDA events; median of repeats)",
        "licence": "MIT",
        "notes": ("per-layer ops of one TP rank; dtype float16; collectives of rank 0",),
    }
    provenance = file_provenance(files, frames)
    return ImportResult(frame=pd.concat(frames, ignore_index=True), meta=meta,
                        provenance=provenance)  # fmt: skip
