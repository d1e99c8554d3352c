"""The prefill factor of the cost hook (`OpMultipliers.prefill`, infsim/cost/perturb.py):
a prefill-only step's dense work and attention move by exactly the factor, a decode-only
step not at all (bit for bit), and a mixed step splits by the documented rule, in the
roofline and the calibrated model alike."""

from __future__ import annotations

import pytest

from infsim.core.batch import batch_of
from infsim.cost.factory import build_cost_model
from infsim.cost.perturb import OpMultipliers, prefill_rows, scaling
from infsim.cost.roofline import PrefillScaledRoofline, RooflineCostModel
from tests.uncertainty.test_uncertainty_cost_hook import calibrated_config, roofline_config

F = 1.7
PREFILL = [(300, 0), (120, 500)]  # (new tokens, cached tokens): two prompt chunks
DECODE = [(1, 300), (1, 900), (1, 40)]


CONFIGS = [roofline_config, calibrated_config]


def models(config, **factors):
    cfg = config()
    plain = build_cost_model(cfg)
    with scaling(OpMultipliers(**factors)):
        scaled = build_cost_model(cfg)
    return plain, scaled


def dense(ops: dict[str, float]) -> float:
    return sum(v for k, v in ops.items() if k not in ("attention", "overhead", "lm_head",
                                                      "lm_head_sampler"))  # fmt: skip


def test_prefill_rows_follow_the_calibrated_models_rule() -> None:
    batch = batch_of([*PREFILL, *DECODE])
    assert prefill_rows(batch) == (420, 300 * 301 // 2 + 120 * 500 + 120 * 121 // 2, 920)
    batch.draft_k = 2  # a verify row of 3 tokens prices as decode; 4 would be a chunk
    assert prefill_rows(batch_of([(3, 50)]))[0] == 3
    verify = batch_of([(3, 50)])
    verify.draft_k = 2
    assert prefill_rows(verify) == (0, 0, 0)


@pytest.mark.parametrize("config", CONFIGS)
def test_prefill_only_step_moves_by_exactly_the_factor(config) -> None:
    plain, scaled = models(config, prefill=F)
    batch = batch_of(PREFILL)
    base, ops = plain.op_times_s(batch), scaled.op_times_s(batch)
    assert dense(ops) == pytest.approx(F * dense(base), rel=1e-12)
    assert ops["attention"] == pytest.approx(F * base["attention"], rel=1e-12)
    assert ops["overhead"] == base["overhead"]  # the host's time is the overhead class's
    moved = (F - 1.0) * (dense(base) + base["attention"])
    assert scaled.step_time_s(batch) == pytest.approx(plain.step_time_s(batch) + moved, rel=1e-12)
    assert moved > 0.1 * plain.step_time_s(batch)  # the factor has something to move


@pytest.mark.parametrize("config", CONFIGS)
def test_decode_only_steps_are_untouched_bit_for_bit(config) -> None:
    plain, scaled = models(config, prefill=F)
    batch = batch_of(DECODE)
    assert scaled.step_time_s(batch) == plain.step_time_s(batch)
    assert scaled.op_times_s(batch) == plain.op_times_s(batch)
    assert scaled.decode_run_times_s(3, 1240, 6) == plain.decode_run_times_s(3, 1240, 6)


@pytest.mark.parametrize("config", CONFIGS)
def test_mixed_step_split_rule(config) -> None:
    _, scaled = models(config, dense=1.3, attention=0.8, prefill=F)
    _, unit = models(config, dense=1.3, attention=0.8)
    mixed = batch_of([*PREFILL, *DECODE])
    base, ops = unit.op_times_s(mixed), scaled.op_times_s(mixed)
    tokens = mixed.num_batched_tokens
    assert dense(ops) == pytest.approx(dense(base) * (1 + (F - 1) * 420 / tokens), rel=1e-12)
    attn_p = unit.op_times_s(batch_of(PREFILL))["attention"]
    if isinstance(unit, RooflineCostModel):  # batch totals: the prefill rows' priced share
        assert isinstance(scaled, PrefillScaledRoofline)
        attn_d = unit.op_times_s(batch_of(DECODE))["attention"]
        share = attn_p / (attn_p + attn_d)
        assert 0 < share < 1
        assert ops["attention"] == pytest.approx(base["attention"] * (1 + (F - 1) * share))
    else:  # each chunk's own lookup: the decode attention stays, the prefill part moves
        assert ops["attention"] == pytest.approx(base["attention"] + (F - 1) * attn_p, rel=1e-12)
    head = [k for k in ops if k.startswith("lm_head")]
    assert [ops[k] for k in head] == [base[k] for k in head]
    assert scaled.step_time_s(mixed) == pytest.approx(sum(ops.values()), rel=1e-12)
    compute = getattr(scaled, "compute_time_s", None)
    if compute is not None:  # the proposer's fast path agrees with the op breakdown
        assert compute(mixed) == pytest.approx(sum(ops.values()) - ops["overhead"], rel=1e-12)


def test_without_a_prefill_factor_the_plain_roofline_is_built() -> None:
    cfg = roofline_config()
    with scaling(OpMultipliers(attention=1.2)):
        assert type(build_cost_model(cfg)) is RooflineCostModel
    with scaling(OpMultipliers(prefill=1.2)):
        assert type(build_cost_model(cfg)) is PrefillScaledRoofline
    with pytest.raises(ValueError, match="prefill"):
        OpMultipliers(prefill=0.0)


def test_calibrated_coverage_counts_the_prefill_seconds() -> None:
    plain, scaled = models(calibrated_config, prefill=F)
    steps = [batch_of([*PREFILL, *DECODE]), batch_of(PREFILL), batch_of([(64, 10), (1, 7)])]
    for model in (plain, scaled):
        priced = sum(model.step_time_s(b) for b in steps)
        assert float(model.coverage_s().sum()) == pytest.approx(priced, rel=1e-9)
