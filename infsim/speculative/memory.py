"""The proposer's place in GPU memory: its weights, and its KV in every block.

vLLM V1 loads the proposer next to the target and gives its layers KV in the same block
pool (one block table, the KV cache spec covers target and draft layers), so with
speculation each block costs the target's plus the proposer's KV bytes per token, and the
proposer's weights come out of the memory left for KV:

    draft_model   a whole model: all its weights; KV of all its layers
    eagle, mtp    one decoder layer of the target's shape (`proposer_spec`): that layer's
                  weights (embedding and LM head are the target's); KV of one layer
    ngram         nothing

`with_proposer` re-derives the block count of a resolved `KVCapacity`: from memory, both
effects; with `kv_cache_memory_bytes`, only the larger bytes per block (that knob is the
whole pool); with `num_gpu_blocks_override`, nothing (the block count is given).
The EAGLE head's input projection (2h × h, or 3h × h for EAGLE-3) is not counted: < 1 %
of an 8B model's memory.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from infsim.catalog import precision as prec
from infsim.catalog.model import load_model
from infsim.catalog.model_spec import ModelSpec
from infsim.errors import InputError
from infsim.kvcache.capacity import KVCapacity, kv_bytes_per_token_per_gpu
from infsim.speculative.spec import SpeculativeSpec

FIELD = "draft_model"  # resolve.py prefixes the file and engine.speculative


def proposer_spec(
    spec: SpeculativeSpec,
    target: ModelSpec,
    base_dir: Path,
    tensor_parallel: int,
    pipeline_parallel: int = 1,
) -> ModelSpec | None:
    """The model the proposer runs: the draft model, a one-layer head, or None (ngram).

    Pipeline parallelism is refused: the pipelined replica prices stages, not the
    proposer's passes, so its cost would silently vanish."""
    if pipeline_parallel > 1:
        raise InputError(
            f"not modelled with deployment.pipeline_parallel = {pipeline_parallel}: infsim "
            "prices the proposer only on single-stage replicas; use pipeline_parallel: 1 "
            "(tensor_parallel for the larger model) or remove engine.speculative"
        )
    if spec.method == "ngram":
        return None
    if spec.method in ("eagle", "mtp"):
        return replace(
            target, name=f"{target.name} {spec.method} head", num_layers=1, num_dense_layers=0
        )
    try:
        draft = load_model(spec.draft_model or "", base_dir=base_dir)
    except InputError as err:
        raise InputError(f"{FIELD}: {err}") from None
    if draft.vocab_size != target.vocab_size:
        raise InputError(
            f"{FIELD}: {draft.name} has a vocabulary of {draft.vocab_size} tokens, the target "
            f"{target.name} {target.vocab_size}; a draft model must share the target's "
            "tokenizer (vLLM rejects the pair)"
        )
    heads, kv_heads = draft.num_attention_heads, draft.num_kv_heads
    if heads % tensor_parallel or (kv_heads % tensor_parallel and tensor_parallel % kv_heads):
        raise InputError(
            f"{FIELD}: {draft.name} ({heads} heads, {kv_heads} KV heads) cannot be sharded "
            f"over deployment.tensor_parallel = {tensor_parallel} (the draft runs with the "
            "target's TP)"
        )
    return draft


def proposer_weight_bytes(spec: SpeculativeSpec, proposer: ModelSpec, precision: str) -> float:
    """Unsharded weight bytes the proposer adds (a head shares embedding and LM head)."""
    if spec.method == "draft_model":
        return float(proposer.weight_bytes(precision))
    params = proposer.num_params_total - proposer.embedding_params()
    return params * prec.bytes_per_element(prec.resolve(precision, proposer.dtype))


def with_proposer(
    kv: KVCapacity,
    spec: SpeculativeSpec,
    proposer: ModelSpec,
    *,
    tensor_parallel: int,
    weight_precision: str,
    kv_precision: str,
) -> KVCapacity:
    """`kv` recomputed with the proposer's weights and per-token KV (see module doc)."""
    if kv.source == "num_gpu_blocks_override":
        return kv
    extra_kv = kv_bytes_per_token_per_gpu(proposer, tensor_parallel, kv_precision)
    per_token = kv.kv_bytes_per_token_per_gpu + extra_kv
    available, weights = kv.available_bytes_per_gpu, kv.weight_bytes_per_gpu
    if kv.source == "memory":
        extra_weights = proposer_weight_bytes(spec, proposer, weight_precision) / tensor_parallel
        available -= extra_weights
        weights += extra_weights
    num_blocks = max(0, math.floor(available / (kv.block_size * per_token)))
    return replace(
        kv,
        num_blocks=num_blocks,
        kv_bytes_per_token_per_gpu=per_token,
        available_bytes_per_gpu=available,
        weight_bytes_per_gpu=weights,
    )
