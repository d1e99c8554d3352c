"""Map a profiled torch/vLLM CPU op (name + `Input Dims`) to a canonical calibration op.

`classify(name, args)` returns one of
    `Shaped`    the op and its shape columns (a calibration row once timed),
    `Unshaped`  an op we recognise but whose shape the trace cannot give (skipped, counted),
    None        an op we do not model (transparent: its children may still be recognised).

The outermost recognised op on a thread claims everything beneath it (its kernels on a
GPU, its own duration on a CPU), so `aten::linear` → `aten::addmm` yields one gemm row.

Mapping decisions (argument positions are those of the op schema):

    aten::mm (a[M,K], b[K,N])          gemm m=M n=N k=K
    aten::addmm (bias, a, b)           gemm from a, b
    aten::matmul (a[...,M,K], b[K,N])  gemm m=prod(a[:-1]); a batched b is Unshaped
    aten::linear (x[...,K], w[N,K])    gemm m=prod(x[:-1]) n=N k=K (torch weight is [out,in])
    _C::onednn_mm (c[M,N], a[M,K])     gemm (vLLM CPU; the weight is a prepacked handle)
    aten::bmm / baddbmm                Unshaped (batched GEMM has no gemm row)
    scaled_dot_product_attention       q[B,H,Sq,D], k[B,Hkv,Skv,D]: Sq == 1 → attention_decode
      (and the aten flash/efficient/     (kv_len=Skv), else attention_prefill (query_len=Sq,
      cudnn/cpu variants)                kv_len=Skv)
    vLLM paged/varlen attention        Unshaped: per-sequence lengths are tensor values,
                                       which traces do not record
    layer/rms norms                    norm num_tokens=prod(x[:-1]) hidden_size=x[-1]
    _C::silu_and_mul (out, x[T,2I])    activation num_tokens=T inter_size=I
    aten::silu/gelu/relu               activation num_tokens=prod(x[:-1])
    _C::rotary_embedding (pos, ...)    rotary num_tokens=prod(pos)
    aten::embedding (w[V,H], ids)      embedding num_tokens=prod(ids)
    nccl:<collective>, c10d, vLLM      collective message_bytes=prod(x)*bytes(dtype),
      custom all-reduce                num_devices = group size, else the trace world size
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infsim.errors import shown

TYPE_DTYPE = {
    "float": "float32",
    "c10::BFloat16": "bfloat16",
    "c10::Half": "float16",
    "c10::Float8_e4m3fn": "fp8",
    "c10::Float8_e5m2": "fp8",
    "signed char": "int8",
}
"""Kineto `Input type` strings → canonical precision (others leave dtype null)."""

TYPE_BYTES = {
    "double": 8, "float": 4, "c10::BFloat16": 2, "c10::Half": 2, "c10::Float8_e4m3fn": 1,
    "c10::Float8_e5m2": 1, "signed char": 1, "unsigned char": 1, "int": 4, "long int": 8,
}  # fmt: skip


@dataclass(frozen=True)
class Shaped:
    op: str
    shape: tuple[tuple[str, int], ...]
    dtype: str | None


@dataclass(frozen=True)
class Unshaped:
    reason: str


Result = Shaped | Unshaped | None
Mapper = Callable[[list[Any], list[Any], dict[str, Any]], Result]

PAGED_ATTENTION = (
    "vllm::unified_attention", "vllm::unified_attention_with_output",
    "_C::cpu_attention_with_kv_cache", "_C::paged_attention_v1", "_C::paged_attention_v2",
    "_vllm_fa2_C::varlen_fwd", "_vllm_fa3_C::fwd", "vllm::flash_attn_varlen_func",
    "FlashAttnVarlenFunc", "flash_attn::_flash_attn_varlen_forward",
)  # fmt: skip
COLLECTIVE_NAMES = {
    "all_reduce": "all_reduce", "allreduce": "all_reduce", "all_gather": "all_gather",
    "_all_gather_base": "all_gather", "allgather": "all_gather",
    "reduce_scatter": "reduce_scatter", "_reduce_scatter_base": "reduce_scatter",
    "all_to_all": "all_to_all", "all_to_allv": "all_to_all", "alltoall": "all_to_all",
    "send": "send_recv", "recv": "send_recv", "allgather_base": "all_gather",
    "reduce_scatter_base": "reduce_scatter", "alltoall_base": "all_to_all",
}  # fmt: skip


MAX_DIM = 2**53
"""Largest shape value of a row: exact in a float, far within int64."""
_MAPPING_ERRORS = (
    IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError
)  # fmt: skip


def classify(name: str, args: dict[str, Any], world_size: int | None = None) -> Result:
    """Canonical op for one host event (see the module docstring for the mapping).

    A trace's `Input Dims`, types and collective sizes are data: anything that is not the
    shape the op's schema promises (text, nulls, nesting, non-positive or astronomically
    large sizes) makes the op `Unshaped` with the reason, counted in the import's notes."""
    try:
        result = _classify(name, args, world_size)
    except _MAPPING_ERRORS:
        return Unshaped(f"unexpected arguments {shown(args)}")
    if isinstance(result, Shaped):
        bad = [(k, v) for k, v in result.shape if not _dimension(v)]
        if bad:
            return Unshaped(f"unexpected shape {shown(dict(bad))}")
    return result


def _well_formed(dims: Any, depth: int = 0) -> bool:
    """`Input Dims` as Kineto writes them: a list of shapes (lists of sizes; tensor lists
    nest one level more), every size a whole number 0 … MAX_DIM."""
    if not isinstance(dims, list) or depth > 3:
        return False
    return all(_dimension(d) if depth and not isinstance(d, list) else _well_formed(d, depth + 1)
               for d in dims)  # fmt: skip


def _dimension(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DIM


def _classify(name: str, args: dict[str, Any], world_size: int | None) -> Result:
    if name in PAGED_ATTENTION:
        return Unshaped("paged/varlen attention (per-sequence lengths not recorded)")
    if name.startswith("nccl:"):
        return _collective(name, args, world_size)
    if name.startswith("c10d::") or name == "record_param_comms":
        # Wrappers: usable when they carry sizes, else transparent so that the nccl:*
        # annotation inside them is used.
        result = _collective(name, args, world_size)
        return result if isinstance(result, Shaped) else None
    if name == "_C_custom_ar::all_reduce":
        return _collective("nccl:all_reduce", {**args, "_tensor": 1}, world_size)
    mapper = MAPPERS.get(name)
    if mapper is None:
        return None
    dims = args.get("Input Dims")
    types = args.get("Input type") or []
    if dims is None:
        return Unshaped("no Input Dims (profile with record_shapes=True)")
    if not _well_formed(dims):
        return Unshaped(f"unexpected Input Dims {shown(dims)}")
    try:
        return mapper(dims, list(types), args)
    except _MAPPING_ERRORS:
        return Unshaped(f"unexpected Input Dims {shown(dims)}")


def _dtype(types: list[Any], i: int) -> str | None:
    return TYPE_DTYPE.get(types[i]) if i < len(types) else None


def _shaped(op: str, dtype: str | None, **shape: int) -> Shaped:
    return Shaped(op, tuple(sorted(shape.items())), dtype)


def _gemm(a: list[int], b: list[int], dtype: str | None) -> Result:
    if len(a) < 2 or len(b) != 2:
        return Unshaped("batched matmul (no gemm row)")
    return _shaped("gemm", dtype, m=math.prod(a[:-1]), k=a[-1], n=b[-1])


def _mm(dims, types, _args) -> Result:
    return _gemm(dims[0], dims[1], _dtype(types, 0))


def _addmm(dims, types, _args) -> Result:
    return _gemm(dims[1], dims[2], _dtype(types, 1))


def _linear(dims, types, _args) -> Result:
    x, weight = dims[0], dims[1]
    if len(weight) != 2:
        return Unshaped(f"linear weight of rank {len(weight)}")
    return _shaped("gemm", _dtype(types, 0), m=math.prod(x[:-1]), k=x[-1], n=weight[0])


def _onednn_mm(dims, types, _args) -> Result:
    out, a = dims[0], dims[1]
    return _shaped("gemm", _dtype(types, 1), m=math.prod(a[:-1]), k=a[-1], n=out[-1])


def _batched(_dims, _types, _args) -> Result:
    return Unshaped("batched GEMM (bmm) has no gemm row")


def _sdpa(dims, types, _args) -> Result:
    q, k = dims[0], dims[1]
    if len(q) != 4 or len(k) != 4:
        return Unshaped(f"attention with non-4-D query/key {q} {k}")
    batch, heads, query_len, head_dim = q
    common = {"batch_size": batch, "num_heads": heads, "num_kv_heads": k[1], "head_dim": head_dim}
    if query_len == 1:
        return _shaped("attention_decode", _dtype(types, 0), kv_len=k[2], **common)
    return _shaped(
        "attention_prefill", _dtype(types, 0), query_len=query_len, kv_len=k[2], **common
    )


def _per_token(op: str, index: int, **extra: Callable[[list[int]], int]) -> Mapper:
    def mapper(dims, types, _args) -> Result:
        x = dims[index]
        more = {key: fn(x) for key, fn in extra.items()}
        return _shaped(op, _dtype(types, index), num_tokens=math.prod(x[:-1]), **more)

    return mapper


def _embedding(dims, types, _args) -> Result:
    weight, ids = dims[0], dims[1]
    return _shaped("embedding", _dtype(types, 0), num_tokens=math.prod(ids), hidden_size=weight[-1])


def _rotary(dims, types, _args) -> Result:
    return _shaped("rotary", _dtype(types, 1), num_tokens=math.prod(dims[0]))


def _collective(name: str, args: dict[str, Any], world_size: int | None) -> Result:
    kind = args.get("Collective name") if name == "record_param_comms" else name.split(":")[-1]
    op = COLLECTIVE_NAMES.get(str(kind).strip("_"))
    if op is None:
        return None if name == "record_param_comms" else Unshaped(f"collective {kind!r}")
    group = args.get("Group size") or world_size
    if not group:
        return Unshaped("collective without a group size or world size")
    nelems = args.get("In msg nelems")
    dtype_name = args.get("dtype")
    if nelems is None:
        dims, types = args.get("Input Dims") or [], args.get("Input type") or []
        index = args.get("_tensor", 0)
        if index >= len(dims) or not dims[index] or index >= len(types):
            return Unshaped("collective without a message size")
        nelems, dtype_name = math.prod(dims[index]), types[index]
    size = TYPE_BYTES.get(str(dtype_name)) or TYPE_BYTES.get(_kineto_type(dtype_name))
    if not size:
        return Unshaped(f"collective with unknown element type {dtype_name!r}")
    return _shaped(
        op,
        TYPE_DTYPE.get(str(dtype_name)),
        message_bytes=int(nelems) * size,
        num_devices=int(group),
    )


def _kineto_type(name: Any) -> str:
    """record_param_comms writes `dtype` as 'Float'/'BFloat16'; map to Input-type spelling."""
    return {"Float": "float", "BFloat16": "c10::BFloat16", "Half": "c10::Half"}.get(str(name), "")


def _last(x: list[int]) -> int:
    return x[-1]


def _half_last(x: list[int]) -> int:
    return x[-1] // 2


_NORM_X0 = _per_token("norm", 0, hidden_size=_last)
MAPPERS: dict[str, Mapper] = {
    "aten::mm": _mm,
    "aten::addmm": _addmm,
    "aten::matmul": _mm,
    "aten::linear": _linear,
    "_C::onednn_mm": _onednn_mm,
    "aten::bmm": _batched,
    "aten::baddbmm": _batched,
    "aten::scaled_dot_product_attention": _sdpa,
    "aten::_scaled_dot_product_flash_attention": _sdpa,
    "aten::_scaled_dot_product_flash_attention_for_cpu": _sdpa,
    "aten::_scaled_dot_product_efficient_attention": _sdpa,
    "aten::_scaled_dot_product_cudnn_attention": _sdpa,
    "aten::layer_norm": _NORM_X0,
    "aten::native_layer_norm": _NORM_X0,
    "aten::rms_norm": _NORM_X0,
    "aten::_fused_rms_norm": _NORM_X0,
    "_C::rms_norm": _per_token("norm", 1, hidden_size=_last),
    "_C::fused_add_rms_norm": _NORM_X0,
    "_C::silu_and_mul": _per_token("activation", 1, inter_size=_half_last),
    "aten::silu": _per_token("activation", 0),
    "aten::gelu": _per_token("activation", 0),
    "aten::relu": _per_token("activation", 0),
    "_C::rotary_embedding": _rotary,
    "aten::embedding": _embedding,
}
