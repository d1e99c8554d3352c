"""HF `config.json` keys -> `ModelSpec`, for the architectures infsim knows how to count.

Key mapping (HF key -> ModelSpec field; default when absent):

    num_hidden_layers -> num_layers           num_key_value_heads -> num_kv_heads (= heads)
    head_dim -> head_dim (= hidden/heads)     torch_dtype | dtype -> dtype (= bfloat16)
    tie_word_embeddings (= false)             quantization_config.quant_method overrides dtype
    mixtral: num_local_experts, num_experts_per_tok; experts are intermediate_size wide
    qwen3_moe: num_experts, num_experts_per_tok, moe_intermediate_size
    deepseek_v2/v3: n_routed_experts, n_shared_experts, first_k_dense_replace, MLA ranks

A missing `torch_dtype` defaults to bfloat16 because vLLM's `--dtype auto` serves float32
checkpoints in 16 bit on GPUs. Sliding windows, RoPE scaling and DeepSeek's multi-token
prediction layers do not change parameter or per-token KV counts here and are ignored.
"""

from __future__ import annotations

from typing import Any

from infsim.catalog import precision as prec
from infsim.catalog._fields import Fields
from infsim.catalog.model_spec import ModelSpec
from infsim.errors import InputError, did_you_mean

SUPPORTED_MODEL_TYPES = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "mixtral",
    "qwen3_moe",
    "deepseek_v2",
    "deepseek_v3",
)

KNOWN_KEYS = frozenset(
    {
        "model_type",
        "architectures",
        "num_hidden_layers",
        "hidden_size",
        "intermediate_size",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "vocab_size",
        "max_position_embeddings",
        "tie_word_embeddings",
        "attention_bias",
        "torch_dtype",
        "dtype",
        "quantization_config",
        "rope_theta",
        "sliding_window",
        "num_local_experts",
        "num_experts",
        "n_routed_experts",
        "n_shared_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "decoder_sparse_step",
        "mlp_only_layers",
        "first_k_dense_replace",
        "moe_layer_freq",
        "kv_lora_rank",
        "q_lora_rank",
        "qk_rope_head_dim",
        "qk_nope_head_dim",
        "v_head_dim",
    }
)
"""Keys this module reads or knowingly ignores; built-in catalog files may use only these."""

_QUANT_METHODS = {"fp8": "fp8", "mxfp4": "fp4", "nvfp4": "fp4", "modelopt_fp4": "fp4"}


def spec_from_hf_config(fields: Fields, *, name: str, source: str, as_of: str = "") -> ModelSpec:
    """Build a `ModelSpec` from HF config keys; errors name the file and the key."""
    model_type = fields.get_str("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise InputError(
            f"{fields.where('model_type')}: unsupported {model_type!r}"
            f"{did_you_mean(model_type, SUPPORTED_MODEL_TYPES)}; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    hidden_size = fields.get_int("hidden_size", minimum=1)
    num_heads = fields.get_int("num_attention_heads", minimum=1)
    is_mla = model_type.startswith("deepseek")
    shape: dict[str, Any] = {
        "num_layers": fields.get_int("num_hidden_layers", minimum=1),
        "hidden_size": hidden_size,
        "intermediate_size": fields.get_int("intermediate_size", minimum=1),
        "num_attention_heads": num_heads,
        "num_kv_heads": fields.opt_int("num_key_value_heads", num_heads, minimum=1),
        "head_dim": _mla_head_dim(fields) if is_mla else _head_dim(fields, hidden_size, num_heads),
        "vocab_size": fields.get_int("vocab_size", minimum=1),
        "max_position_embeddings": fields.get_int("max_position_embeddings", minimum=1),
        "tie_word_embeddings": fields.opt_bool("tie_word_embeddings", False),
        "attention_bias": model_type == "qwen2" or fields.opt_bool("attention_bias", False),
        "qk_norm": model_type in ("qwen3", "qwen3_moe"),
    }
    moe = _moe_fields(fields, model_type, shape["intermediate_size"])
    mla = _mla_fields(fields) if is_mla else {}
    return ModelSpec(
        name=name, **shape, **moe, **mla, dtype=_dtype(fields), source=source, as_of=as_of
    )


def _head_dim(fields: Fields, hidden_size: int, num_heads: int) -> int:
    if fields.has("head_dim"):
        return fields.get_int("head_dim", minimum=1)
    if hidden_size % num_heads:
        raise InputError(
            f"{fields.where('head_dim')}: missing, and hidden_size ({hidden_size}) is not a "
            f"multiple of num_attention_heads ({num_heads}); set head_dim"
        )
    return hidden_size // num_heads


def _mla_head_dim(fields: Fields) -> int:
    return fields.get_int("qk_nope_head_dim", minimum=1) + fields.get_int(
        "qk_rope_head_dim", minimum=1
    )


def _moe_fields(fields: Fields, model_type: str, intermediate_size: int) -> dict[str, int]:
    if model_type == "mixtral":
        return {
            "num_experts": fields.get_int("num_local_experts", minimum=1),
            "num_experts_per_tok": fields.get_int("num_experts_per_tok", minimum=1),
            "moe_intermediate_size": intermediate_size,
        }
    if model_type == "qwen3_moe":
        if fields.opt_int("decoder_sparse_step", 1) != 1 or fields.data.get("mlp_only_layers"):
            raise InputError(
                f"{fields.where('decoder_sparse_step')}: only all-MoE layouts are supported "
                "(decoder_sparse_step 1, empty mlp_only_layers)"
            )
        return {
            "num_experts": fields.get_int("num_experts", minimum=1),
            "num_experts_per_tok": fields.get_int("num_experts_per_tok", minimum=1),
            "moe_intermediate_size": fields.get_int("moe_intermediate_size", minimum=1),
        }
    if model_type.startswith("deepseek") and fields.has("n_routed_experts"):
        if fields.opt_int("moe_layer_freq", 1) != 1:
            raise InputError(f"{fields.where('moe_layer_freq')}: only 1 is supported")
        return {
            "num_experts": fields.get_int("n_routed_experts", minimum=1),
            "num_experts_per_tok": fields.get_int("num_experts_per_tok", minimum=1),
            "moe_intermediate_size": fields.get_int("moe_intermediate_size", minimum=1),
            "num_shared_experts": fields.opt_int("n_shared_experts", 0),
            "num_dense_layers": fields.opt_int("first_k_dense_replace", 0),
        }
    return {}


def _mla_fields(fields: Fields) -> dict[str, int]:
    return {
        "kv_lora_rank": fields.get_int("kv_lora_rank", minimum=1),
        "q_lora_rank": fields.opt_int("q_lora_rank", 0),
        "qk_rope_head_dim": fields.get_int("qk_rope_head_dim", minimum=1),
        "qk_nope_head_dim": fields.get_int("qk_nope_head_dim", minimum=1),
        "v_head_dim": fields.get_int("v_head_dim", minimum=1),
    }


def _dtype(fields: Fields) -> str:
    """Weight precision: a known `quantization_config` wins over `torch_dtype`."""
    if fields.has("quantization_config"):
        quant = fields.sub("quantization_config")
        method = quant.get_str("quant_method").lower()
        if method in ("awq", "gptq"):
            bits = quant.opt_int("bits", 4)
            if bits not in (4, 8):
                raise InputError(f"{quant.where('bits')}: only 4 or 8 supported, got {bits}")
            return "int4" if bits == 4 else "int8"
        if method not in _QUANT_METHODS:
            raise InputError(
                f"{quant.where('quant_method')}: unsupported {method!r}; supported: "
                f"awq, gptq, {', '.join(_QUANT_METHODS)} (or remove quantization_config and "
                "set torch_dtype to the weight precision)"
            )
        return _QUANT_METHODS[method]
    key = "torch_dtype" if fields.has("torch_dtype") else "dtype"
    if not fields.has(key):
        return "bfloat16"
    try:
        dtype = prec.canonical(fields.get_str(key))
    except InputError as exc:
        raise InputError(f"{fields.where(key)}: {exc}") from exc
    return "bfloat16" if dtype == prec.AUTO else dtype
