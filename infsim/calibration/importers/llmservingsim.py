"""LLMServingSim v1 profiler bundles → calibration rows.

    perf/<HW>/<org>/<model>/<variant>/meta.yaml
    perf/<HW>/<org>/<model>/<variant>/tp<N>/{dense,per_sequence,attention,moe}.csv

Times are `time_us` (µs). Each tp<N> folder holds per-rank measurements of one layer
(vLLM with TP emulated by per-rank shapes), so shapes are the model's divided by N (KV heads
at least one per rank) and `tp` = N. The model comes from ImportOptions.model, else
meta.yaml `model` (an HF id), else the folder names; it must be in the model catalog or be
a config.json path. The device comes from ImportOptions.device, else meta.yaml `hardware`
(RTXPRO6000 → RTX-PRO-6000, RTX4090 → RTX-4090; an unknown name is kept as written, no
catalog entry is required), else the <HW> folder. dtype / kv_dtype from the variant name
(`bf16`, `bf16-kvfp8`, …). Mapping:

    dense.csv         qkv_proj, o_proj, gate_up_proj, down_proj → gemm (m = tokens);
                      layernorm, final_layernorm, qk_norm → norm; rotary_emb → rotary;
                      act_fn → activation; embedding → embedding; other layers →
                      elementwise; variant = layer name
    per_sequence.csv  lm_head → lm_head, sampler → sampler (batch_size = sequences)
    attention.csv     one prefill chunk (prefill_chunk new tokens over kv_prefill cached
                      ones) + n_decode decodes over kv_decode cached tokens each:
                        prefill_chunk = 0  → attention_decode: batch_size = n_decode,
                                             kv_len = kv_decode + 1
                        n_decode = 0       → attention_prefill: batch_size = 1,
                                             query_len = prefill_chunk,
                                             kv_len = kv_prefill + prefill_chunk
                        both > 0           → attention_mixed: query_len, kv_len as prefill,
                                             batch_size = n_decode,
                                             decode_kv_len = kv_decode + 1
                      (kv lengths count the new tokens, as `calibration.table` defines;
                      newer bundles' `prefill_key` = kv_prefill + prefill_chunk / 2 is
                      converted back; rows with decode_q_len > 1 are dropped); heads and
                      head_dim per rank are filled in every attention row
    moe.csv           moe: num_tokens = tokens, hidden_size, inter_size =
                      moe_intermediate_size / N, num_experts, topk from the model;
                      variant = "activated_experts=<a>" (distinct experts the forced
                      routing touched); rows with ep > 1 dropped
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infsim.calibration.importers import ImportOptions, ImportResult, importers
from infsim.calibration.importers._common import (
    SOURCE,
    TIME_UNITS,
    device_name,
    dtype_name,
    file_provenance,
    numbers,
    one_device,
    read_csv,
    show,
    text_column,
    unit_column,
)
from infsim.catalog.model import ModelSpec, load_model
from infsim.errors import InputError
from infsim.textio import load_yaml, read_text

FILES = ("dense.csv", "per_sequence.csv", "attention.csv", "moe.csv")
GEMMS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
PER_TOKEN = {
    "layernorm": "norm",
    "final_layernorm": "norm",
    "input_layernorm": "norm",
    "post_attention_layernorm": "norm",
    "qk_norm": "norm",
    "rotary_emb": "rotary",
    "act_fn": "activation",
    "embedding": "embedding",
}
PER_SEQUENCE = {"lm_head": "lm_head", "sampler": "sampler"}
MAX_TP = 1024


@dataclass(frozen=True)
class _Bundle:
    """One tp<N> folder and what its files need: model, per-rank TP, dtypes, device."""

    model: ModelSpec
    tp: int
    dtype: str
    kv_dtype: str
    device: str | None

    def heads(self) -> dict[str, int]:
        return {"num_heads": self.model.num_attention_heads // self.tp,
                "num_kv_heads": max(1, self.model.num_kv_heads // self.tp),
                "head_dim": self.model.head_dim}  # fmt: skip

    def gemm(self, layer: str) -> tuple[int, int]:
        """(n, k) of a dense projection on one rank."""
        h, hidden = self.heads(), self.model.hidden_size
        inter = self.model.intermediate_size // self.tp
        shapes = {
            "qkv_proj": ((h["num_heads"] + 2 * h["num_kv_heads"]) * h["head_dim"], hidden),
            "o_proj": (hidden, h["num_heads"] * h["head_dim"]),
            "gate_up_proj": (2 * inter, hidden),
            "down_proj": (hidden, inter),
        }
        return shapes[layer]


def _meta(bundle_dir: Path) -> dict[str, Any]:
    path = bundle_dir / "meta.yaml"
    if not path.is_file():
        return {}
    data = load_yaml(read_text(path, "bundle meta.yaml"), str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping (model, hardware, variant, …), "
                         f"got {show(data)}")  # fmt: skip
    for key in ("model", "hardware", "variant", "vllm_version", "profiled_at"):
        value = data.get(key)
        if value is not None and not isinstance(value, str | int | float | date):
            raise InputError(f"{path}: {key} is {show(value)}; expected text")
    return data


def _bundle(csv: Path, options: ImportOptions) -> _Bundle:
    match = re.fullmatch(r"tp([0-9]{1,4})", csv.parent.name)
    if not match or not 1 <= int(match[1]) <= MAX_TP:
        raise InputError(
            f"{csv}: not in a tp<N> folder of an LLMServingSim bundle (N = 1 to {MAX_TP})"
        )
    bundle_dir = csv.parent.parent
    meta = _meta(bundle_dir)
    name = options.model or meta.get("model") or "/".join(bundle_dir.parts[-3:-1])
    try:
        model = load_model(str(name), base_dir=bundle_dir)
    except InputError as err:
        raise InputError(
            f"{csv}: model {name!r} is needed for the shapes but is not known: {err}. "
            "Name a catalog model or a config.json (ImportOptions.model / --model)"
        ) from None
    variant = str(meta.get("variant") or bundle_dir.name).lower().split("-")
    dtype = dtype_name(variant[0], csv)
    kv = next((v.removeprefix("kv") for v in variant[1:] if v.startswith("kv")), None)
    folder = bundle_dir.parents[2].name if len(bundle_dir.parents) > 2 else ""
    hardware = str(meta.get("hardware") or folder)
    return _Bundle(model=model, tp=int(match[1]), dtype=dtype,
                   kv_dtype=dtype_name(kv, csv) if kv else dtype,
                   device=device_name(hardware) or hardware)  # fmt: skip


def _times(raw: pd.DataFrame, path: Path) -> np.ndarray:
    column, to_s = unit_column(raw, path, ("time", "latency"), TIME_UNITS)
    return numbers(raw, column, path) * to_s


def _dense(raw: pd.DataFrame, path: Path, b: _Bundle) -> pd.DataFrame:
    text_column(raw, "layer", path)
    tokens = numbers(raw, "tokens", path)
    frame = pd.DataFrame({"op": raw["layer"].map(PER_TOKEN).fillna("elementwise"),
                          "num_tokens": tokens, "hidden_size": b.model.hidden_size,
                          "variant": raw["layer"]})  # fmt: skip
    gemm = raw["layer"].isin(GEMMS).to_numpy()
    shapes = np.array([b.gemm(layer) if layer in GEMMS else (0, 0) for layer in raw["layer"]])
    frame.loc[gemm, "op"] = "gemm"
    frame["m"] = np.where(gemm, tokens, np.nan)
    frame["n"] = np.where(gemm, shapes[:, 0], np.nan)
    frame["k"] = np.where(gemm, shapes[:, 1], np.nan)
    frame.loc[gemm, ["num_tokens", "hidden_size"]] = np.nan
    return frame


def _per_sequence(raw: pd.DataFrame, path: Path, b: _Bundle) -> pd.DataFrame:
    unknown = sorted(set(text_column(raw, "layer", path)) - set(PER_SEQUENCE))
    if unknown:
        raise InputError(
            f"{path}: unknown per-sequence layer(s) {unknown}; known: lm_head, sampler"
        )
    return pd.DataFrame({"op": raw["layer"].map(PER_SEQUENCE), "variant": raw["layer"],
                         "batch_size": numbers(raw, "sequences", path)})  # fmt: skip


def _attention(raw: pd.DataFrame, path: Path, b: _Bundle) -> pd.DataFrame:
    chunk, n_decode = numbers(raw, "prefill_chunk", path), numbers(raw, "n_decode", path)
    kv_decode = numbers(raw, "kv_decode", path)
    if "kv_prefill" in raw.columns:
        kv_prefill = numbers(raw, "kv_prefill", path)
    elif "prefill_key" in raw.columns:
        kv_prefill = numbers(raw, "prefill_key", path) - chunk / 2
    else:
        raise InputError(f"{path}: missing column kv_prefill (or prefill_key)")
    empty = np.flatnonzero((chunk <= 0) & (n_decode <= 0))
    if empty.size:
        raise InputError(f"{path}: row {int(empty[0])}: neither a prefill chunk nor decodes")
    decode, prefill = chunk <= 0, n_decode <= 0
    mixed = ~decode & ~prefill
    frame = pd.DataFrame(
        {"op": np.select([decode, prefill], ["attention_decode", "attention_prefill"],
                         "attention_mixed"),
         "batch_size": np.where(prefill, 1, n_decode),
         "query_len": np.where(decode, np.nan, chunk),
         "kv_len": np.where(decode, kv_decode + 1, kv_prefill + chunk),
         "decode_kv_len": np.where(mixed, kv_decode + 1, np.nan),
         "kv_dtype": b.kv_dtype, "variant": raw.get("layer", "attention"), **b.heads()},
        index=raw.index,
    )  # fmt: skip
    if "decode_q_len" in raw.columns:
        frame = frame[numbers(raw, "decode_q_len", path) <= 1]
    return frame


def _moe(raw: pd.DataFrame, path: Path, b: _Bundle) -> pd.DataFrame:
    spec = b.model
    if not spec.num_experts:
        raise InputError(f"{path}: MoE table but model {spec.name!r} has no experts")
    activated = numbers(raw, "activated_experts", path, integral=True).astype(np.int64)
    frame = pd.DataFrame(
        {"op": "moe", "num_tokens": numbers(raw, "tokens", path),
         "hidden_size": spec.hidden_size, "inter_size": spec.moe_intermediate_size // b.tp,
         "num_experts": spec.num_experts, "topk": spec.num_experts_per_tok,
         "variant": [f"activated_experts={a}" for a in activated]},
        index=raw.index,
    )  # fmt: skip
    if "ep" in raw.columns:
        frame = frame[numbers(raw, "ep", path) == 1]
    return frame


READERS = {
    "dense.csv": (("layer", "tokens"), _dense),
    "per_sequence.csv": (("layer", "sequences"), _per_sequence),
    "attention.csv": (("prefill_chunk", "n_decode", "kv_decode"), _attention),
    "moe.csv": (("tokens", "activated_experts"), _moe),
}


def _read(path: Path, bundle: _Bundle) -> pd.DataFrame:
    if path.name not in READERS:
        raise InputError(f"{path}: not an LLMServingSim bundle table; known: {', '.join(FILES)}")
    required, convert = READERS[path.name]
    raw = read_csv(path, required)
    times = pd.Series(_times(raw, path), index=raw.index)
    frame = convert(raw, path, bundle)
    return frame.assign(dtype=bundle.dtype, tp=bundle.tp, time_s=times.loc[frame.index],
                        **{SOURCE: str(path)})  # fmt: skip


def _files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_file():
            files.append(path)
            continue
        for csv in sorted(path.rglob("tp*/*.csv")):
            if csv.name in FILES and (csv.parent.parent / "meta.yaml").is_file():
                files.append(csv)
    if not files:
        raise InputError(f"{', '.join(map(str, paths))}: no LLMServingSim bundle tables")
    return list(dict.fromkeys(files))


@importers.register("llmservingsim")
def import_llmservingsim(paths: list[Path], options: ImportOptions) -> ImportResult:
    files = _files(paths)
    bundles = {f: _bundle(f, options) for f in files}
    models = sorted({b.model.name for b in bundles.values()})
    if len(models) > 1:
        raise InputError(
            f"{', '.join(map(str, paths))}: bundles of several models {models}; "
            "import one model at a time"
        )
    frames = [_read(f, bundles[f]) for f in files]
    first = _meta(files[0].parent.parent)
    meta: dict[str, object] = {
        "device": one_device({f: b.device for f, b in bundles.items()}, options.device),
        "engine": options.engine or "vllm",
        "engine_version": options.engine_version or str(first.get("vllm_version", "")),
        "source": "LLMServingSim profiler bundle (github.com/casys-kaist/LLMServingSim)",
        "profiler": "LLMServingSim profiler (CUDA activity per layer, 1-layer vLLM model)",
        "collected": str(first.get("profiled_at", "")),
        "licence": "MIT",
        "notes": (f"model {models[0]}; shapes per TP rank",),
    }
    provenance = file_provenance(files, frames)
    return ImportResult(frame=pd.concat(frames, ignore_index=True), meta=meta,
                        provenance=provenance)  # fmt: skip
