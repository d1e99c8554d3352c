"""Hypothesis: the roofline's decode-run pricing (operator maps in C) equals the per-step
expression it replaced, bit for bit, and pricing each step of the run as a batch, under
random shapes of run and op multipliers (x · m ≠ x when m ≠ 1, so the order of the
multiplications shows)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.cost.perturb import OpMultipliers
from infsim.cost.roofline import RooflineCostModel
from tests.cost.test_cost_roofline import MODELS, decode_batch

FACTORS = st.sampled_from([1.0, 0.9, 1.1, 1.37, 0.73])


def expression(cm: RooflineCostModel, num_seqs: int, context: int, num_steps: int) -> list[float]:
    """`decode_run_times_s` as the list comprehension it was."""
    fixed = cm._dense_s(num_seqs, num_seqs)
    overhead = cm._overhead_s(num_seqs)
    per_kv = max(cm._s_per_pair, cm._s_per_kv_token)
    m_attn = cm.multipliers.attention
    kv0 = context + num_seqs
    return [fixed + (kv0 + num_seqs * j) * per_kv * m_attn + overhead for j in range(num_steps)]


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    contexts=st.lists(st.integers(0, 300_000), min_size=0, max_size=96),
    num_steps=st.integers(0, 60),
    attention=FACTORS,
    overhead=FACTORS,
    dense=FACTORS,
)
def test_decode_run_times_equal_the_expression(
    name: str, contexts: list[int], num_steps: int, attention: float, overhead: float,
    dense: float,
) -> None:  # fmt: skip
    base = MODELS[name]
    multipliers = OpMultipliers(dense=dense, attention=attention, overhead=overhead)
    cm = RooflineCostModel(base.shape, base.params, multipliers)
    num_seqs, context = len(contexts), sum(contexts)
    run = cm.decode_run_times_s(num_seqs, context, num_steps)
    assert run == expression(cm, num_seqs, context, num_steps)
    if contexts:
        for j in range(min(num_steps, 5)):
            assert run[j] == cm.step_time_s(decode_batch([c + j for c in contexts]))
