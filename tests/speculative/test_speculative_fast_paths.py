"""The speculative hot paths against their straightforward forms, bit for bit: the
speculator's row-by-row acceptance from buffered uniforms and its folded per-position
counters against one `rng.random(n)` and numpy inversion (`draw_accepted`) per step and
per-step counters, and the roofline's proposer decode pass priced from its sums against
the batch it stands for."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.core.batch import Batch, batch_of
from infsim.cost.draft import ProposerCost
from infsim.cost.factory import build_cost_model
from infsim.cost.perturb import OpMultipliers, scaling
from infsim.speculative import speculator
from infsim.speculative.acceptance import draw_accepted
from infsim.speculative.speculator import Speculator
from tests.uncertainty.test_uncertainty_cost_hook import roofline_config


class ReferenceSpeculator:
    """The numpy form: one `draw_accepted` per step and the counters per step."""

    def __init__(self, marginals: np.ndarray, seed: int) -> None:
        self.k = len(marginals)
        self.marginals = marginals
        self.rng = np.random.default_rng(seed)
        self.drafts_per_position = np.zeros(self.k, dtype=np.int64)
        self.accepted_per_position = np.zeros(self.k, dtype=np.int64)
        self.num_accepted = 0

    def accept(self, num_drafts: list[int]) -> list[int]:
        drafts = np.asarray(num_drafts, dtype=np.int64)
        accepted = draw_accepted(self.rng.random(drafts.size), self.marginals, drafts)
        for i in range(self.k):  # position i: drafted by d > i, accepted by a > i
            self.drafts_per_position[i] += int(np.sum(drafts > i))
            self.accepted_per_position[i] += int(np.sum(accepted > i))
        self.num_accepted += int(accepted.sum())
        return accepted.tolist()


@st.composite
def speculation(draw):
    k = draw(st.integers(1, 6))
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k))
    marginals = np.minimum.accumulate(np.asarray(raw))  # non-increasing, as every law's
    steps = draw(st.lists(st.lists(st.integers(1, k), max_size=40), max_size=12))
    reads = draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
    block = draw(st.integers(1, 64))  # uniforms drawn at a time: steps straddle blocks
    return marginals, steps, reads, block, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=200, deadline=None)
@given(speculation())
def test_acceptance_and_counters_equal_the_numpy_form(case) -> None:
    marginals, steps, reads, block, seed = case
    fast = Speculator(len(marginals), marginals, np.random.default_rng(seed))
    ref = ReferenceSpeculator(marginals, seed)
    with patch.object(speculator, "UNIFORM_BLOCK", block):
        for drafts, read in zip(steps, reads, strict=True):
            assert fast.accept(drafts) == ref.accept(drafts)
            if read:  # reading the counters mid-run folds what is pending, exactly once
                got = fast.stats.drafts_per_position.tolist()
                assert got == ref.drafts_per_position.tolist()
    stats = fast.stats
    assert stats.drafts_per_position.tolist() == ref.drafts_per_position.tolist()
    assert stats.accepted_per_position.tolist() == ref.accepted_per_position.tolist()
    assert stats.num_accepted_tokens == ref.num_accepted
    assert stats.num_verifies == sum(map(len, steps))
    assert stats.num_draft_tokens == sum(map(sum, steps))


def _proposers() -> list:
    cfg = roofline_config()
    plain = build_cost_model(cfg)
    with scaling(OpMultipliers(prefill=1.7, attention=0.8, dense=1.2)):
        scaled = build_cost_model(cfg)  # PrefillScaledRoofline
    return [plain, scaled]


PROPOSERS = _proposers()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 20_000), min_size=1, max_size=64), st.integers(0, 5))
def test_decode_pass_from_sums_equals_the_batch(ends: list[int], j: int) -> None:
    batch = Batch(num_new_tokens=[1] * len(ends), num_context_tokens=[e + j for e in ends],
                  num_batched_tokens=len(ends), num_sampled=len(ends))  # fmt: skip
    work = sum(ends) + len(ends) * (j + 1)
    for model in PROPOSERS:
        assert model.decode_pass_time_s(len(ends), work) == model.compute_time_s(batch)


class BatchOnly:
    """A proposer without `decode_pass_time_s`: every pass is priced from its batch."""

    def __init__(self, model) -> None:
        self.model = model

    def compute_time_s(self, batch: Batch) -> float:
        return self.model.compute_time_s(batch)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 600), st.integers(0, 9_000), st.booleans()),
        min_size=1,
        max_size=24,
    ),
    st.integers(1, 5),
)
def test_proposer_passes_equal_the_batch_path(rows: list[tuple[int, int, bool]], k: int) -> None:
    batch = batch_of([(q, c) for q, c, _ in rows])  # each row reaches its num_tokens...
    for req, (_, _, chunk) in zip(batch.requests, rows, strict=True):
        req.num_prompt_tokens += chunk  # ...unless it is a prompt chunk: no drafts
    batch.draft_k = k
    for model in PROPOSERS:
        fast = ProposerCost(model, overhead_s=1e-4).draft_time_s(batch)
        assert fast == ProposerCost(BatchOnly(model), overhead_s=1e-4).draft_time_s(batch)
