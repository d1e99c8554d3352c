"""Checks that a replica's parallel layout is possible and that it fits in memory.

Fit (per GPU of the most loaded pipeline stage, as vLLM profiles every worker and keeps the
smallest KV pool): weights / (tp · pp) + activation reserve + runtime overhead + the KV of
one `max_model_len` sequence must fit in memory × gpu_memory_utilization; vLLM refuses to
start otherwise ("To serve at least one request with the model's max seq len … KV cache
is needed, which is larger than the available KV cache memory"). infsim applies that rule
when `engine.max_model_len` is given; when it defaults to the model's maximum (often
128k tokens, which small GPUs cannot hold) one KV block must fit and requests too long for
the pool are rejected and counted, as before. Under EP (which divides
TP here) the expert weights are spread over ep ranks and TP-sharded tp/ep ways, so they
too take 1/tp of the stage's share; the message gives both parts.
"""

from __future__ import annotations

from infsim.catalog.hardware import GPUSpec
from infsim.catalog.model_spec import ModelSpec
from infsim.errors import InputError
from infsim.kvcache.base import cdiv
from infsim.kvcache.capacity import KVCapacity

GIB = 1 << 30


def check_layout(model: ModelSpec, pp: int, ep: int, tp: int, source: str) -> None:
    """Pipeline stages need layers; EP needs an MoE model and must divide TP and experts."""
    if pp > model.num_layers:
        raise InputError(
            f"{source}: deployment.pipeline_parallel: {pp} stages for the {model.num_layers} "
            f"layers of {model.name}; allowed: 1..{model.num_layers}"
        )
    if ep == 1:
        return
    if not model.is_moe:
        raise InputError(
            f"{source}: deployment.expert_parallel: {ep}, but {model.name} has no experts "
            "(not an MoE model); allowed: 1"
        )
    if tp % ep or model.num_experts % ep:
        raise InputError(
            f"{source}: deployment.expert_parallel: {ep} must divide both "
            f"deployment.tensor_parallel ({tp}) and the {model.num_experts} experts of "
            f"{model.name} (experts spread over ep ranks, each TP-sharded tp/ep ways)"
        )


def check_links(gpu: GPUSpec, tp: int, pp: int, gpus_per_node: int, source: str) -> None:
    """Every link a replica's collectives or stage sends cross must exist in the catalog."""
    if tp * pp == 1:
        return
    spans = tp * pp > gpus_per_node
    for link, where in ((gpu.intra_node_link, "intra_node_link"),
                        (gpu.inter_node_link, "inter_node_link")):  # fmt: skip
        needed = spans if where == "inter_node_link" else min(tp * pp, gpus_per_node) > 1
        if needed and link.bandwidth_bytes_per_s <= 0:
            raise InputError(
                f"{source}: deployment: tensor_parallel {tp} × pipeline_parallel {pp} needs "
                f"{gpu.name}'s {where}, which the hardware catalog lists as kind "
                f"{link.kind!r} (no bandwidth), with {gpus_per_node} GPU(s) per node; use "
                "tensor_parallel and pipeline_parallel 1 (scale with deployment.replicas) or "
                "a GPU with that link"
            )


def check_fit(
    model: ModelSpec,
    gpu: GPUSpec,
    kv: KVCapacity,
    *,
    utilization: float,
    max_model_len: int | None,
    weight_precision: str,
    parallel: tuple[int, int, int],
    source: str,
) -> None:
    """Raise InputError with the per-GPU numbers when one max_model_len sequence does not
    fit (memory-derived capacity, explicit max_model_len) or not even one block does.
    `parallel` = (tp, pp, ep)."""
    explicit = max_model_len is not None and kv.source == "memory"
    need_blocks = cdiv(max_model_len, kv.block_size) if explicit else 1
    if kv.num_usable_blocks >= need_blocks:
        return
    tp, pp, ep = parallel
    budget = gpu.memory_bytes * utilization
    per_gpu = tp * pp
    experts = 0.0
    if model.is_moe:
        share = model.num_experts * model.expert_params() * model.num_moe_layers
        experts = share * model.weight_bytes(weight_precision) / model.num_params_total
    dense = model.weight_bytes(weight_precision) - experts
    kv_need = need_blocks * kv.block_size * kv.kv_bytes_per_token_per_gpu
    expert_part = (
        f" (non-expert {dense / per_gpu / GIB:.2f} GiB = {dense / GIB:.1f} GiB / (tp {tp} × "
        f"pp {pp}), experts {experts / per_gpu / GIB:.2f} GiB = {experts / GIB:.1f} GiB / "
        f"(ep {ep} × tp/ep {tp // ep} × pp {pp}))"
        if model.is_moe
        else f" ({model.weight_bytes(weight_precision) / GIB:.1f} GiB / (tp {tp} × pp {pp}))"
    )
    raise InputError(
        f"{source}: deployment: {model.name} does not fit on {tp * pp} × {gpu.name} per "
        f"replica: each GPU gives {budget / GIB:.2f} GiB ({utilization:.2f} of "
        f"{gpu.memory_bytes / GIB:.1f} GiB) but weights need "
        f"{kv.weight_bytes_per_gpu / GIB:.1f} GiB{expert_part}, activations "
        f"{kv.activation_bytes_per_gpu / GIB:.2f} GiB, runtime "
        f"{kv.overhead_bytes_per_gpu / GIB:.2f} GiB and KV for "
        + (f"one max_model_len {max_model_len}-token sequence " if explicit else "one block ")
        + f"{kv_need / GIB:.2f} GiB ({need_blocks} blocks × "
        f"{kv.block_size} tokens × {kv.kv_bytes_per_token_per_gpu:.0f} B), leaving "
        f"{kv.num_usable_blocks} usable blocks; raise deployment.tensor_parallel or "
        "pipeline_parallel, lower engine.max_model_len, use a smaller weight_precision or a "
        "larger GPU"
    )
