"""How many KV blocks a replica has, from memory or an explicit override (vLLM semantics).

Per GPU, vLLM profiles a forward pass of `max_num_batched_tokens` tokens and then gives
the KV cache what is left of `gpu_memory_utilization` of the device:

    kv_bytes = memory × gpu_memory_utilization − weights/TP − activation peak − runtime overhead
    blocks   = floor(kv_bytes / (block_size × KV bytes per token per GPU))

and, as in vLLM V1, one of those blocks is the pool's reserved null block, so requests can
use blocks − 1 (measured on the live engine: an override of 33 blocks holds 32 × 128 tokens).

KV bytes per token per GPU = layers × 2 × kv_heads_per_gpu × head_dim × dtype bytes, where
TP shards KV heads (replicating them when TP > kv_heads). The activation peak is estimated
from the profile-run shape (one layer's widest activations for max_num_batched_tokens
tokens, plus fp32 logits for max_num_seqs rows); the runtime overhead (CUDA context,
NCCL buffers, CUDA graphs) is a documented constant. Both are estimates; an explicit
`num_gpu_blocks_override` or `kv_cache_memory_bytes` bypasses them, and the live
validation (issue #4) checks the block count against vLLM's own log line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infsim.catalog.model_spec import ModelSpec

GPU_RUNTIME_OVERHEAD_BYTES = 1 << 30
"""CUDA context + NCCL + CUDA-graph pool, ~1 GiB (vLLM logs 0.5–1.5 GiB on H100)."""


@dataclass(frozen=True, slots=True)
class KVCapacity:
    num_blocks: int
    block_size: int
    kv_bytes_per_token_per_gpu: float
    available_bytes_per_gpu: float
    weight_bytes_per_gpu: float
    activation_bytes_per_gpu: float
    overhead_bytes_per_gpu: float
    source: str  # "memory", "num_gpu_blocks_override" or "kv_cache_memory_bytes"

    @property
    def num_usable_blocks(self) -> int:
        """Blocks requests can use: vLLM V1's block pool reserves one as the null block
        (`BlockPool.null_block`), so `--num-gpu-blocks-override N` serves N − 1."""
        return max(0, self.num_blocks - 1)

    @property
    def num_tokens(self) -> int:
        return self.num_blocks * self.block_size


def kv_heads_per_gpu(model: ModelSpec, tensor_parallel: int) -> float:
    return max(1.0, model.num_kv_heads / tensor_parallel)


def kv_bytes_per_token_per_gpu(model: ModelSpec, tensor_parallel: int, kv_precision: str) -> float:
    per_token = model.kv_bytes_per_token(kv_precision)
    if model.is_mla:  # the latent is replicated on every TP rank
        return float(per_token)
    return per_token * kv_heads_per_gpu(model, tensor_parallel) / model.num_kv_heads


def activation_peak_bytes(
    model: ModelSpec, tensor_parallel: int, max_num_batched_tokens: int, max_num_seqs: int
) -> float:
    """Peak activation memory of vLLM's profile run, per GPU (estimate, see module doc)."""
    tp = tensor_parallel
    ffn = model.moe_intermediate_size * model.num_experts_per_tok or model.intermediate_size
    width = 4 * model.hidden_size + (model.q_size + 2 * model.kv_size) / tp + 3 * ffn / tp
    logits = max_num_seqs * model.vocab_size / tp * 4
    return max_num_batched_tokens * width * 2 + logits


def kv_capacity(  # noqa: PLR0913
    *,
    model: ModelSpec,
    memory_bytes: float,
    tensor_parallel: int,
    weight_precision: str,
    kv_precision: str,
    block_size: int,
    gpu_memory_utilization: float,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    runtime_overhead_bytes: float,
    num_gpu_blocks_override: int | None = None,
    kv_cache_memory_bytes: int | None = None,
    pipeline_parallel: int = 1,
) -> KVCapacity:
    """Blocks per replica. Under PP every stage holds the KV of its own layers and vLLM
    keeps the smallest stage pool, so the most loaded stage (most layers, weights/(tp·pp))
    sets the count."""
    per_token = kv_bytes_per_token_per_gpu(model, tensor_parallel, kv_precision)
    weights = model.weight_bytes(weight_precision) / (tensor_parallel * pipeline_parallel)
    if pipeline_parallel > 1:
        per_token = per_token * -(-model.num_layers // pipeline_parallel) / model.num_layers
    act = activation_peak_bytes(model, tensor_parallel, max_num_batched_tokens, max_num_seqs)
    available = memory_bytes * gpu_memory_utilization - weights - act - runtime_overhead_bytes
    source = "memory"
    if num_gpu_blocks_override is not None:
        num_blocks, source = num_gpu_blocks_override, "num_gpu_blocks_override"
    else:
        if kv_cache_memory_bytes is not None:
            available, source = float(kv_cache_memory_bytes), "kv_cache_memory_bytes"
        num_blocks = max(0, math.floor(available / (block_size * per_token)))
    return KVCapacity(
        num_blocks=num_blocks,
        block_size=block_size,
        kv_bytes_per_token_per_gpu=per_token,
        available_bytes_per_gpu=available,
        weight_bytes_per_gpu=weights,
        activation_bytes_per_gpu=act,
        overhead_bytes_per_gpu=runtime_overhead_bytes,
        source=source,
    )
