"""`ModelSpec`: a decoder-only transformer's shape, and the sizes derived from it.

The fields mirror HF `config.json` (see `hf_config.py` for the key mapping). Parameter
counts are computed from the architecture, not copied from model cards, so that a user's
own config.json gets the same treatment as the built-in catalog; tests check them against
published totals within 1 %.

Per decoder layer (h = hidden_size, q = heads x head_dim, kv = kv_heads x head_dim):

    attention   q_proj h*q, k_proj h*kv, v_proj h*kv, o_proj q*h  (+ q/k/v bias, q/k norm)
                MLA (DeepSeek): q_a h*q_lora, q_b q_lora*heads*(nope+rope),
                kv_a h*(kv_lora+rope), kv_b kv_lora*heads*(nope+v), o heads*v*h
    MLP         dense: gate, up, down = 3*h*intermediate
                MoE: experts*3*h*moe_intermediate + shared*3*h*moe_intermediate + router h*experts
    norms       2*h (input and post-attention RMSNorm weights)

plus the embedding vocab*h, the LM head vocab*h unless tied, and the final norm h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infsim.catalog import precision as prec
from infsim.errors import InputError


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Shape of one model. Counts are per model, unsharded; sizes are in bytes.

    Invariants (checked on construction): all dimensions positive, `num_attention_heads`
    a multiple of `num_kv_heads`, `num_experts_per_tok <= num_experts`, and the MoE and MLA
    field groups either all zero or all set.
    """

    name: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    """Dense MLP width (for Mixtral, which has no dense layers, the per-expert width)."""
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    """Query/key head size; for MLA, qk_nope_head_dim + qk_rope_head_dim."""
    vocab_size: int
    max_position_embeddings: int
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    num_shared_experts: int = 0
    num_dense_layers: int = 0
    """MoE models only: leading layers with a dense MLP (DeepSeek `first_k_dense_replace`)."""
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    """q/k/v projections carry a bias (Qwen2)."""
    qk_norm: bool = False
    """Per-head RMSNorm on q and k (Qwen3)."""
    kv_lora_rank: int = 0
    """MLA only: width of the compressed KV latent that the cache stores."""
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    dtype: str = "bfloat16"
    """Default weight precision (canonical name, see `precision.py`)."""
    source: str = ""
    as_of: str = ""

    def __post_init__(self) -> None:
        dims = {
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_attention_heads": self.num_attention_heads,
            "num_kv_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
        }
        for key, value in dims.items():
            if value < 1:
                self._fail(f"{key} must be >= 1, got {value}")
        if self.num_attention_heads % self.num_kv_heads:
            self._fail(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.is_moe and not 1 <= self.num_experts_per_tok <= self.num_experts:
            self._fail(f"num_experts_per_tok must be in 1..{self.num_experts}")
        if self.is_moe and self.moe_intermediate_size < 1:
            self._fail("moe_intermediate_size must be >= 1 for an MoE model")
        if not self.is_moe and (self.num_experts_per_tok or self.num_shared_experts):
            self._fail("num_experts_per_tok/num_shared_experts need num_experts > 0")
        if not 0 <= self.num_dense_layers <= self.num_layers:
            self._fail(f"num_dense_layers must be in 0..{self.num_layers}")
        if self.is_mla and min(self.qk_rope_head_dim, self.v_head_dim) < 1:
            self._fail("MLA (kv_lora_rank > 0) needs qk_rope_head_dim and v_head_dim >= 1")
        if prec.canonical(self.dtype) != self.dtype or self.dtype == prec.AUTO:
            self._fail(f"dtype must be a canonical precision name, got {self.dtype!r}")

    def _fail(self, message: str) -> None:
        raise InputError(f"model {self.name!r}: {message}")

    # --- shape -------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def q_size(self) -> int:
        """Width of the query projection output (heads x head_dim)."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of each of the K and V projection outputs (kv_heads x head_dim)."""
        return self.num_kv_heads * self.head_dim

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.num_dense_layers if self.is_moe else 0

    # --- parameters --------------------------------------------------------------------
    def attention_params_per_layer(self) -> int:
        h = self.hidden_size
        if self.is_mla:
            heads = self.num_attention_heads
            qk_head_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * heads * qk_head_dim
            else:
                q = h * heads * qk_head_dim
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv_a + kv_b + heads * self.v_head_dim * h
        params = 2 * h * self.q_size + 2 * h * self.kv_size
        if self.attention_bias:
            params += self.q_size + 2 * self.kv_size
        if self.qk_norm:
            params += 2 * self.head_dim
        return params

    def dense_mlp_params(self) -> int:
        return 3 * self.hidden_size * self.intermediate_size

    def expert_params(self) -> int:
        """One routed (or shared) expert: gate, up and down projections."""
        return 3 * self.hidden_size * self.moe_intermediate_size

    def _layer_params(self, num_routed_experts: int) -> int:
        """All decoder layers, counting `num_routed_experts` routed experts per MoE layer."""
        norms = 2 * self.hidden_size
        attention = self.attention_params_per_layer()
        dense = self.num_layers - self.num_moe_layers
        moe_mlp = (
            (num_routed_experts + self.num_shared_experts) * self.expert_params()
            + self.hidden_size * self.num_experts  # router
        )
        return (
            (attention + norms) * self.num_layers
            + dense * self.dense_mlp_params()
            + self.num_moe_layers * moe_mlp
        )

    def embedding_params(self) -> int:
        """Input embedding, LM head (unless tied) and the final norm."""
        lm_head = 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size
        return self.vocab_size * self.hidden_size + lm_head + self.hidden_size

    @property
    def num_params_total(self) -> int:
        return self.embedding_params() + self._layer_params(self.num_experts)

    @property
    def num_params_active(self) -> int:
        """Parameters touched per token: MoE layers count top-k routed + shared experts."""
        return self.embedding_params() + self._layer_params(self.num_experts_per_tok)

    # --- bytes -------------------------------------------------------------------------
    def weight_bytes(self, precision: str = prec.AUTO) -> int:
        """All weights at one precision, unsharded (`auto` = `dtype`).

        Uniform: embeddings and norms, which quantisers usually keep in 16 bit, and
        quantisation scales are not modelled separately (a few percent; see precision.py).
        """
        return math.ceil(self.num_params_total * self._bytes(precision))

    def kv_bytes_per_token_per_layer(self, kv_precision: str = prec.AUTO) -> int:
        """Cache bytes one token occupies in one layer.

        GQA/MHA: K and V, 2 x kv_heads x head_dim elements. MLA: the compressed latent plus
        the decoupled RoPE key, kv_lora_rank + qk_rope_head_dim elements (no separate V).
        """
        num_elements = (
            self.kv_lora_rank + self.qk_rope_head_dim if self.is_mla else 2 * self.kv_size
        )
        return math.ceil(num_elements * self._bytes(kv_precision))

    def kv_bytes_per_token(self, kv_precision: str = prec.AUTO) -> int:
        """Cache bytes one token occupies across all layers."""
        return self.num_layers * self.kv_bytes_per_token_per_layer(kv_precision)

    def _bytes(self, precision: str) -> float:
        return prec.bytes_per_element(prec.resolve(precision, self.dtype))
