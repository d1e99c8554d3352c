"""Vidur and LLMServingSim importers on the staged files and on edited copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from infsim.calibration.importers import ImportOptions, import_paths
from infsim.errors import InputError

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "profiles"
VIDUR = DATA / "microsoft_vidur"
LSS = DATA / "casys_llmservingsim" / "perf"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared profile data absent ({DATA})")
LLAMA7B = VIDUR / "compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv"
LLAMA8B = LSS / "RTXPRO6000/meta-llama/Llama-3.1-8B/bf16"


def run(fmt: str, *paths: Path, **options: object) -> pd.DataFrame:
    return import_paths(fmt, list(paths), ImportOptions(**options)).frame


def test_vidur_mlp_shapes_and_times() -> None:
    frame = run("vidur", LLAMA7B)
    assert len(frame) == 1044 * 10  # README: 1,044 rows x 10 ops
    qkv = frame[(frame.variant == "attn_pre_proj") & (frame.tp == 1)]
    assert set(zip(qkv.n, qkv.k, strict=True)) == {(12288, 4096)}
    up = frame[(frame.variant == "mlp_up_proj") & (frame.tp == 2)]
    assert set(zip(up.n, up.k, strict=True)) == {(11008, 4096)}  # gated: 2 x 11008 / 2
    first = qkv.iloc[0]
    assert (first.m, first.time_s) == (4096, pytest.approx(1.911e-3))  # median 1.911 ms
    assert set(frame.op) == {"gemm", "norm", "rotary", "activation", "elementwise", "embedding"}
    assert set(frame.dtype) == {"float16"}


def test_vidur_network_and_devices() -> None:
    result = import_paths("vidur", [VIDUR / "network/a100_dgx"], ImportOptions())
    assert result.meta["device"] == "A100-80GB"
    frame = result.frame
    assert len(frame) == 6958 + 1988
    raw = pd.read_csv(VIDUR / "network/a100_dgx/all_reduce.csv")
    reduce = frame[frame.op == "all_reduce"]
    assert reduce.message_bytes.tolist() == raw["size"].tolist()
    assert set(frame.variant) == {"nccl", "nccl/2_nodes"}
    with pytest.raises(InputError, match="mixed devices"):
        run("vidur", LLAMA7B, VIDUR / "network/h100_dgx/all_reduce.csv")


def test_vidur_bad_files(tmp_path: Path) -> None:
    copy = tmp_path / "compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv"
    copy.parent.mkdir(parents=True)
    raw = pd.read_csv(LLAMA7B)
    raw.assign(n_embd=5120).to_csv(copy, index=False)
    with pytest.raises(InputError, match=rf"{copy}: n_embd \[5120\] disagrees with catalog"):
        run("vidur", copy)
    raw.drop(columns="time_stats.add.median").to_csv(copy, index=False)
    with pytest.raises(InputError, match=rf"{copy}: missing column 'time_stats.add.median'"):
        run("vidur", copy)
    raw.iloc[:0].to_csv(copy, index=False)
    with pytest.raises(InputError, match=rf"{copy}: empty table"):
        run("vidur", copy)


def test_llmservingsim_bundle_conventions() -> None:
    result = import_paths("llmservingsim", [LLAMA8B], ImportOptions())
    assert result.meta["device"] == "RTX-PRO-6000"  # no catalog entry needed
    assert (result.meta["engine"], result.meta["engine_version"]) == ("vllm", "0.19.0")
    frame = result.frame
    assert len(frame) == 2 * (1368 + 80 + 19364)
    qkv = frame[(frame.variant == "qkv_proj")]
    assert set(zip(qkv.tp, qkv.n, qkv.k, strict=True)) == {(1, 6144, 4096), (2, 3072, 4096)}
    tp1 = frame[frame.tp == 1]
    counts = tp1.op.value_counts()
    assert (counts["attention_decode"], counts["attention_prefill"]) == (171, 233)
    assert counts["attention_mixed"] == 19364 - 171 - 233
    # attention.csv row 0: prefill_chunk 0, kv_prefill 0, n_decode 1, kv_decode 16 (µs)
    raw = pd.read_csv(LLAMA8B / "tp1/attention.csv").iloc[0]
    assert raw[["prefill_chunk", "kv_prefill", "n_decode", "kv_decode"]].tolist() == [0, 0, 1, 16]
    first = tp1[tp1.op == "attention_decode"].iloc[0]
    assert (first.batch_size, first.kv_len, first.num_heads, first.num_kv_heads) == (1, 17, 32, 8)
    assert first.time_s == pytest.approx(raw.time_us * 1e-6)
    tp2 = frame[(frame.tp == 2) & (frame.op == "attention_decode")].iloc[0]
    assert (tp2.num_heads, tp2.num_kv_heads, tp2.time_s) == (16, 4, pytest.approx(7.989e-6))
    mixed = tp1[tp1.op == "attention_mixed"]
    assert (mixed.kv_len >= mixed.query_len).all()  # kv_len = kv_prefill + chunk
    assert (mixed.decode_kv_len >= 17).all()
    assert set(frame[frame.op == "sampler"].batch_size) <= set(range(1, 257))


def test_llmservingsim_moe_needs_a_model(tmp_path: Path) -> None:
    bundle = LSS / "RTXPRO6000/Qwen/Qwen3-30B-A3B-Instruct-2507/bf16"
    with pytest.raises(InputError, match="is not known"):
        run("llmservingsim", bundle / "tp1/moe.csv")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({  # Qwen/Qwen3-30B-A3B-Instruct-2507 config.json
        "model_type": "qwen3_moe", "num_hidden_layers": 48, "hidden_size": 2048,
        "intermediate_size": 6144, "num_attention_heads": 32, "num_key_value_heads": 4,
        "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 262144,
        "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
        "torch_dtype": "bfloat16"}))  # fmt: skip
    frame = run("llmservingsim", bundle / "tp1/moe.csv", model=str(config))
    assert len(frame) == 50
    assert set(zip(frame.hidden_size, frame.inter_size, frame.num_experts, frame.topk,
                   strict=True)) == {(2048, 768, 128, 8)}  # fmt: skip


def test_llmservingsim_bad_files(tmp_path: Path) -> None:
    bundle = tmp_path / "RTXPRO6000/meta-llama/Llama-3.1-8B/bf16"
    shutil.copytree(LLAMA8B / "tp1", bundle / "tp1")
    shutil.copy(LLAMA8B / "meta.yaml", bundle / "meta.yaml")
    dense = bundle / "tp1/dense.csv"
    pd.read_csv(dense).rename(columns={"time_us": "time_xs"}).to_csv(dense, index=False)
    with pytest.raises(InputError, match=rf"{dense}: column 'time_xs': unknown unit 'xs'"):
        run("llmservingsim", bundle)
    with pytest.raises(InputError, match="mixed devices"):
        run("llmservingsim", LLAMA8B / "tp1/per_sequence.csv",
            LSS / "RTX4090/meta-llama/Llama-3.1-8B/bf16/tp1/per_sequence.csv")  # fmt: skip
    frame = run("llmservingsim", LLAMA8B / "tp1/per_sequence.csv", device="rtx4090")
    assert len(frame) == 80
