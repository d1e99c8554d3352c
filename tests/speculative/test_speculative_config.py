"""engine.speculative: validation messages, the proposer's memory, and its step cost."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from infsim import api
from infsim.catalog import load_model
from infsim.core.batch import Batch, batch_of
from infsim.cost.draft import SpeculativeCostModel, speculative_cost_model
from infsim.cost.factory import build_cost_model
from infsim.errors import InputError
from infsim.scenario.load import validate_scenario


def raw(**speculative: Any) -> dict[str, Any]:
    spec = {"method": "eagle", "num_speculative_tokens": 3,
            "acceptance": {"kind": "constant", "rate": 0.7}} | speculative  # fmt: skip
    return {
        "name": "spec-config",
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "workload": {"synthetic": {
            "num_requests": 1, "arrival": {"kind": "poisson", "rate_per_s": 1},
            "prompt_tokens": {"kind": "fixed", "value": 8},
            "output_tokens": {"kind": "fixed", "value": 2}}},
        "engine": {"max_num_seqs": 64, "max_num_batched_tokens": 2048, "speculative": spec},
    }  # fmt: skip


def resolved(**speculative: Any):
    rs, _ = api.prepare(validate_scenario(raw(**speculative), "s.yaml"), ".", "s.yaml")
    return rs


@pytest.mark.parametrize(
    ("speculative", "message"),
    [
        ({"method": "draft_model"}, r"engine\.speculative: .*needs draft_model"),
        ({"draft_model": "llama-3.2-1b"}, r"only used with method draft_model"),
        ({"num_speculative_tokens": 0}, r"engine\.speculative\.num_speculative_tokens"),
        ({"acceptance": {"kind": "constant", "rate": 1.2}}, r"acceptance\.constant\.rate"),
        ({"acceptance": {"kind": "empirical", "per_position": [0.8, 0.6]}},
         r"per_position has 2 entries but num_speculative_tokens is 3"),
        ({"acceptance": {"kind": "empirical", "per_position": [0.5, 0.6, 0.2]}},
         r"per_position\[1\] = 0.6 exceeds per_position\[0\]"),
        ({"acceptance": {"kind": "geometric", "rate": 0.8}}, r"geometric\.decay: required"),
        ({"acceptance": {"kind": "linear", "rate": 0.8}}, r"acceptance"),
        ({"method": "medusa"}, r"engine\.speculative\.method"),
        ({"disable_by_batch_size": 0}, r"disable_by_batch_size"),
        ({"num_draft_tokens": 3}, r"num_draft_tokens: unknown field"),
    ],
)  # fmt: skip
def test_bad_sections_name_the_field(speculative: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_scenario(raw(**speculative), "s.yaml")


def test_resolve_errors_name_the_draft_model() -> None:
    with pytest.raises(InputError, match=r"s\.yaml: engine\.speculative: draft_model: .*llama-9"):
        resolved(method="draft_model", draft_model="llama-9")
    with pytest.raises(InputError, match=r"draft_model: tiny-llama has a vocabulary of 13635"):
        resolved(method="draft_model", draft_model="tiny-llama")


def test_proposer_weights_and_kv_shrink_the_block_pool() -> None:
    plain = raw()
    del plain["engine"]["speculative"]
    base, _ = api.prepare(validate_scenario(plain, "s"), ".")
    eagle = resolved()
    draft = resolved(method="draft_model", draft_model="llama-3.2-1b")
    ngram = resolved(method="ngram")
    assert ngram.kv.num_blocks == base.kv.num_blocks
    # EAGLE head: one Llama-3.1-8B layer (KV per token × 33/32) and ~218M parameters.
    kv8 = base.kv.kv_bytes_per_token_per_gpu
    assert eagle.kv.kv_bytes_per_token_per_gpu == pytest.approx(kv8 * 33 / 32)
    head_bytes = eagle.kv.weight_bytes_per_gpu - base.kv.weight_bytes_per_gpu
    assert head_bytes == pytest.approx(2 * 218_112_000, rel=0.01)
    # Llama-3.2-1B: 32 KiB of KV per token on top of 128 KiB, and 2.47 GB of weights.
    assert draft.kv.kv_bytes_per_token_per_gpu == kv8 + 32 * 1024
    assert draft.kv.weight_bytes_per_gpu - base.kv.weight_bytes_per_gpu == pytest.approx(
        load_model("llama-3.2-1b").weight_bytes("bfloat16")
    )
    assert draft.kv.num_blocks < eagle.kv.num_blocks < base.kv.num_blocks
    expected = (base.kv.available_bytes_per_gpu - 2.4716e9) / (16 * (kv8 + 32 * 1024))
    assert draft.kv.num_blocks == pytest.approx(expected, rel=1e-3)


def test_explicit_block_count_is_kept() -> None:
    spec = raw(method="draft_model", draft_model="llama-3.2-1b")
    spec["engine"]["num_gpu_blocks_override"] = 500
    rs, _ = api.prepare(validate_scenario(spec, "s"), ".")
    assert rs.kv.num_blocks == 500


def verify_batch(num_seqs: int, k: int, context: int) -> Batch:
    """`num_seqs` decoding requests each verifying k drafts on `context` cached tokens."""
    batch = Batch(draft_k=k)
    for i, req in enumerate(batch_of([(1, context)] * num_seqs).requests):
        req.index = i
        batch.add(req, 1 + k)  # context + 1 + k = num_tokens + k: k drafts
    return batch


def test_roofline_prices_k_plus_1_query_tokens_and_lm_head_rows() -> None:
    target = build_cost_model(resolved().replica())
    batch = verify_batch(8, 3, 1000)
    assert (batch.num_batched_tokens, batch.num_sampled, batch.num_spec_tokens) == (32, 8, 24)
    chunks = batch_of([(4, 1000)] * 8)  # same query tokens, but only 8 rows sample
    ops, ref = target.op_times_s(batch), target.op_times_s(chunks)
    for name in ("qkv_proj", "o_proj", "mlp", "attention"):
        assert ops[name] == ref[name]
    # LM head over 32 rows (every verified position), not 8.
    rows32 = target.op_times_s(batch_of([(1, 1000)] * 32))["lm_head"]
    assert ops["lm_head"] == rows32 > ref["lm_head"]
    # The step time the simulation uses is the sum of that breakdown.
    assert target.step_time_s(batch) == pytest.approx(sum(ops.values()), rel=1e-12)
    assert target.step_time_s(batch) > target.step_time_s(chunks)


def test_eagle_draft_cost_is_k_passes_of_one_layer() -> None:
    rs = resolved()
    model = speculative_cost_model(rs.replica(), build_cost_model(rs.replica()))
    assert isinstance(model, SpeculativeCostModel)
    one_layer = build_cost_model(replace(rs, model=rs.draft_model).replica())
    batch = verify_batch(4, 3, 500)

    def compute(b: Batch) -> float:
        return sum(v for n, v in one_layer.op_times_s(b).items() if n != "overhead")

    first = Batch(batch.requests, batch.num_new_tokens, batch.num_context_tokens,
                  batch.num_batched_tokens, batch.num_sampled, draft_k=3)  # fmt: skip
    later = [batch_of([(1, 504 + j)] * 4) for j in range(2)]
    expected = compute(first) + sum(compute(b) for b in later)
    assert model.proposer.draft_time_s(batch) == pytest.approx(expected, rel=1e-12)
    step = model.step_time_s(batch)
    assert step == pytest.approx(model.target.step_time_s(batch) + expected, rel=1e-12)
    assert model.draft_time_s == pytest.approx(expected)
    # No drafting in the step: the target alone, nothing added to the tally.
    plain = batch_of([(1, 500)] * 4)
    assert model.step_time_s(plain) == model.target.step_time_s(plain)
    assert model.draft_time_s == pytest.approx(expected)


def test_ngram_costs_its_fixed_overhead_only() -> None:
    rs = resolved(method="ngram", draft_overhead_s=0.0002)
    model = speculative_cost_model(rs.replica(), build_cost_model(rs.replica()))
    batch = verify_batch(4, 3, 500)
    assert model.step_time_s(batch) == model.target.step_time_s(batch) + 0.0002


def test_draft_model_cost_uses_the_draft_models_shape() -> None:
    rs = resolved(method="draft_model", draft_model="llama-3.2-1b")
    model = speculative_cost_model(rs.replica(), build_cost_model(rs.replica()))
    eagle = resolved()
    head = speculative_cost_model(eagle.replica(), build_cost_model(eagle.replica()))
    batch = verify_batch(16, 3, 2000)
    # 16 layers of a 2048-wide model cost more than one 4096-wide layer, less than 8B.
    assert head.proposer.draft_time_s(batch) < model.proposer.draft_time_s(batch)
    assert model.proposer.draft_time_s(batch) < 3 * model.target.step_time_s(batch)


def test_calibrated_verify_rows_price_as_decode_attention() -> None:
    # h100-vllm-0.19: a verify of 1 + 3 tokens on 1000 cached reads 1004 KV tokens, like a
    # decode at 1003: same attention time. Priced as a 4-token prefill chunk instead (no
    # drafting in the batch) it would be the equal-FLOP √(4² + 2·4·1000) ≈ 90-token prompt.
    spec = raw()
    spec["calibration"] = "h100-vllm-0.19"
    rs, _ = api.prepare(validate_scenario(spec, "s"), ".")
    target = build_cost_model(rs.replica())
    verify = target.op_times_s(verify_batch(8, 3, 1000))["attention"]
    decode = target.op_times_s(batch_of([(1, 1003)] * 8))["attention"]
    as_prefill = target.op_times_s(batch_of([(4, 1000)] * 8))["attention"]
    assert verify == decode
    assert as_prefill != verify


def test_pipeline_parallel_is_refused() -> None:
    spec = raw(method="ngram")
    spec["deployment"] = {"pipeline_parallel": 2}
    with pytest.raises(InputError, match=r"engine\.speculative: not modelled with .*pipeline"):
        api.prepare(validate_scenario(spec, "s.yaml"), ".", "s.yaml")
