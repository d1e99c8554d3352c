"""ModelSpec arithmetic against published figures, and the model catalog loader."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infsim.catalog import load_model, model_names
from infsim.catalog.model_spec import ModelSpec
from infsim.errors import InputError

SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"
TINY_LLAMA = SHARED_DIR / "live" / "tiny-llama" / "config.json"

# Published parameter counts (model cards / HF "Model size"), in billions.
PUBLISHED_TOTAL_B = {
    "Llama-2-7B": 6.74,
    "Llama-2-70B": 68.98,
    "Llama-3.1-8B": 8.03,
    "Llama-3.1-70B": 70.6,
    "Llama-3.1-405B": 405.85,
    "Qwen3-8B": 8.19,
    "Qwen3-32B": 32.8,
    "Qwen3-235B-A22B": 235.0,
    "Mistral-7B-v0.3": 7.25,
    "Mixtral-8x7B": 46.7,
    "DeepSeek-V3": 671.0,
}
PUBLISHED_ACTIVE_B = {"Mixtral-8x7B": 12.9, "Qwen3-235B-A22B": 22.0, "DeepSeek-V3": 37.0}


@pytest.mark.parametrize(("name", "billions"), sorted(PUBLISHED_TOTAL_B.items()))
def test_total_params_match_published_within_1pct(name, billions):
    assert load_model(name).num_params_total / 1e9 == pytest.approx(billions, rel=0.01)


@pytest.mark.parametrize(("name", "billions"), sorted(PUBLISHED_ACTIVE_B.items()))
def test_active_params_match_published_within_2pct(name, billions):
    # Vendors round active counts coarsely (22B, 37B); 12.9B for Mixtral is within 1 %.
    assert load_model(name).num_params_active / 1e9 == pytest.approx(billions, rel=0.02)


def test_moe_active_is_less_than_total_and_dense_equal():
    for name in model_names():
        spec = load_model(name)
        if spec.is_moe:
            assert spec.num_params_active < spec.num_params_total
        else:
            assert spec.num_params_active == spec.num_params_total


@pytest.mark.parametrize(
    ("name", "kv_bytes"),
    [
        ("Llama-3.1-8B", 131072),  # 128 KiB
        ("Llama-3.1-70B", 327680),  # 320 KiB
        ("Llama-3.1-405B", 516096),  # 504 KiB
        ("Qwen3-8B", 147456),  # 144 KiB
        ("Qwen3-32B", 262144),  # 256 KiB
        ("Qwen3-235B-A22B", 192512),  # 188 KiB
        ("Mixtral-8x7B", 131072),
        ("Mistral-7B-v0.3", 131072),
        ("Llama-2-7B", 524288),  # MHA: 32 KV heads
        ("Llama-2-70B", 327680),
        ("DeepSeek-V3", 61 * 576 * 2),  # MLA latent 512 + rope 64, ~68.6 KiB
    ],
)
def test_kv_bytes_per_token_16bit(name, kv_bytes):
    spec = load_model(name)
    assert spec.kv_bytes_per_token("bf16") == kv_bytes
    assert spec.kv_bytes_per_token("fp8") == kv_bytes // 2
    assert spec.kv_bytes_per_token_per_layer("bf16") * spec.num_layers == kv_bytes


def test_kv_auto_uses_model_dtype():
    llama2 = load_model("Llama-2-7B")
    assert llama2.dtype == "float16"
    assert llama2.kv_bytes_per_token("auto") == llama2.kv_bytes_per_token("fp16")


def test_weight_bytes():
    spec = load_model("Llama-3.1-8B")
    assert spec.weight_bytes("bf16") == 2 * spec.num_params_total
    assert spec.weight_bytes() == spec.weight_bytes("bfloat16")
    assert spec.weight_bytes("fp8") == spec.num_params_total
    assert spec.weight_bytes("awq") == pytest.approx(spec.num_params_total / 2, abs=1)
    assert load_model("DeepSeek-V3").weight_bytes("auto") == load_model("DeepSeek-V3").weight_bytes(
        "fp8"
    )


def test_every_builtin_loads_with_source_and_as_of():
    names = model_names()
    assert len(names) >= 8
    for name in names:
        spec = load_model(name)
        assert spec.name == name
        assert spec.source
        assert spec.as_of


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("llama-3.1-8b", "Llama-3.1-8B"),
        ("meta-llama/Llama-3.1-8B", "Llama-3.1-8B"),
        ("meta-llama/Meta-Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
        ("LLAMA_3.1_70B", "Llama-3.1-70B"),
        ("Qwen/Qwen3-8B", "Qwen3-8B"),
        ("mistral-7b", "Mistral-7B-v0.3"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B"),
        ("llama2-70b", "Llama-2-70B"),
    ],
)
def test_aliases_resolve(alias, name):
    assert load_model(alias).name == name


def test_unknown_name_suggests_and_lists():
    with pytest.raises(
        InputError, match=r"did you mean 'llama-3.1-8b'.*built-in models:.*Qwen3-8B"
    ):
        load_model("llama-3.1-8")


def test_repeated_loads_are_cached():
    assert load_model("Qwen3-8B") is load_model("qwen3-8b")


@pytest.mark.skipif(not TINY_LLAMA.exists(), reason=f"shared data not present at {SHARED_DIR}")
def test_tiny_llama_config_parses():
    for ref in (str(TINY_LLAMA), str(TINY_LLAMA.parent)):
        spec = load_model(ref)
        assert (spec.num_layers, spec.hidden_size, spec.num_attention_heads) == (4, 512, 8)
        assert (spec.num_kv_heads, spec.head_dim, spec.intermediate_size) == (2, 64, 1408)
        assert (spec.vocab_size, spec.dtype, spec.name) == (13635, "bfloat16", "tiny-llama")
        assert spec.kv_bytes_per_token("bf16") == 2 * 4 * 2 * 64 * 2
    assert load_model("tiny-llama", base_dir=TINY_LLAMA.parents[1]).hidden_size == 512


def _write_config(tmp_path, **overrides):
    config = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_attention_heads": 4,
        "vocab_size": 1000,
        "max_position_embeddings": 2048,
    }
    config.update(overrides)
    config = {k: v for k, v in config.items() if v is not None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_config_defaults_kv_heads_head_dim_and_dtype(tmp_path):
    spec = load_model("config.json", base_dir=_write_config(tmp_path).parent)
    assert (spec.num_kv_heads, spec.head_dim, spec.dtype) == (4, 64, "bfloat16")


def test_config_missing_key_names_file_and_key(tmp_path):
    path = _write_config(tmp_path, hidden_size=None)
    with pytest.raises(InputError, match=r"config\.json: hidden_size: missing required key"):
        load_model(str(path))


def test_config_invalid_value_names_file_and_key(tmp_path):
    path = _write_config(tmp_path, num_attention_heads="eight")
    with pytest.raises(InputError, match=r"config\.json: num_attention_heads: must be an integer"):
        load_model(str(path))


def test_config_unsupported_model_type(tmp_path):
    path = _write_config(tmp_path, model_type="lama")
    with pytest.raises(InputError, match=r"model_type: unsupported 'lama' \(did you mean 'llama'"):
        load_model(str(path))


def test_config_not_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"config\.json: not valid json"):
        load_model(str(path))


def test_config_quantization_sets_dtype(tmp_path):
    path = _write_config(tmp_path, quantization_config={"quant_method": "awq", "bits": 4})
    assert load_model(str(path)).dtype == "int4"


def _spec(num_layers=4, num_kv_heads=2, head_dim=64):
    return ModelSpec(
        name="t",
        num_layers=num_layers,
        hidden_size=512,
        intermediate_size=1024,
        num_attention_heads=8 * num_kv_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        vocab_size=1000,
        max_position_embeddings=4096,
    )


@given(
    num_layers=st.integers(1, 200),
    num_kv_heads=st.integers(1, 64),
    head_dim=st.sampled_from([32, 64, 80, 96, 128, 256]),
)
def test_kv_bytes_linear_in_layers_and_kv_heads(num_layers, num_kv_heads, head_dim):
    one = _spec(1, 1, head_dim).kv_bytes_per_token("bf16")
    spec = _spec(num_layers, num_kv_heads, head_dim)
    assert one == 2 * head_dim * 2
    assert spec.kv_bytes_per_token("bf16") == num_layers * num_kv_heads * one
    assert spec.kv_bytes_per_token("fp8") * 2 == spec.kv_bytes_per_token("bf16")


@given(num_layers=st.integers(1, 200), num_kv_heads=st.integers(1, 16))
def test_fp8_weights_are_half_of_bf16(num_layers, num_kv_heads):
    spec = _spec(num_layers, num_kv_heads)
    assert spec.weight_bytes("fp8") * 2 == spec.weight_bytes("bf16")
    assert spec.weight_bytes("fp32") == 2 * spec.weight_bytes("bf16")


def test_invalid_spec_rejected():
    with pytest.raises(InputError, match="multiple of num_kv_heads"):
        ModelSpec(
            name="bad",
            num_layers=1,
            hidden_size=64,
            intermediate_size=64,
            num_attention_heads=6,
            num_kv_heads=4,
            head_dim=16,
            vocab_size=10,
            max_position_embeddings=16,
        )
