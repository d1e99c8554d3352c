"""Acceptance models against theory: the expected-length formula, the per-position law,
and the speculator's counters (pure: no scheduler, no simulation)."""

from __future__ import annotations

import numpy as np
import pytest

from infsim.speculative.acceptance import (
    ConstantAcceptance,
    EmpiricalAcceptance,
    GeometricAcceptance,
    accepted_distribution,
    constant_rate_mean,
    draw_accepted,
    expected_accepted_tokens,
)
from infsim.speculative.speculator import Speculator

NUM_DRAWS = 40_000


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.6, 0.7, 0.9, 1.0])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_mean_accepted_tokens_matches_closed_form_within_3_sigma(rate: float, k: int) -> None:
    # Leviathan et al. (2023), eq. 1: E[tokens per step] = (1 − α^(k+1)) / (1 − α).
    marginals = ConstantAcceptance(rate).marginals(k)
    theory = constant_rate_mean(rate, k)
    assert expected_accepted_tokens(marginals) == pytest.approx(theory, rel=1e-12)
    rng = np.random.default_rng(1234 + k)
    tokens = 1 + draw_accepted(rng.random(NUM_DRAWS), marginals, np.full(NUM_DRAWS, k))
    # σ of the mean from the exact law of a + 1 (zero when α ∈ {0, 1}: then exact).
    law = accepted_distribution(marginals)
    values = np.arange(1, k + 2)
    var = float(np.sum(law * values**2) - np.sum(law * values) ** 2)
    sigma = np.sqrt(max(var, 0.0) / NUM_DRAWS)
    assert abs(tokens.mean() - theory) <= 3 * sigma + 1e-12


def test_per_position_acceptance_is_the_marginal() -> None:
    # Position i is accepted in a fraction m_i = α^(i+1) of verifies (vLLM's per-position rate).
    k, rate = 4, 0.8
    marginals = ConstantAcceptance(rate).marginals(k)
    rng = np.random.default_rng(7)
    a = draw_accepted(rng.random(NUM_DRAWS), marginals, np.full(NUM_DRAWS, k))
    for i in range(k):
        m = rate ** (i + 1)
        sigma = np.sqrt(m * (1 - m) / NUM_DRAWS)
        assert abs(np.mean(a > i) - m) <= 3 * sigma


def test_geometric_and_empirical_marginals() -> None:
    # Conditional rate α·d^i at position i: marginals are running products.
    assert GeometricAcceptance(0.8, 0.5).marginals(3) == pytest.approx([0.8, 0.32, 0.064])
    assert GeometricAcceptance(0.7, 1.0).marginals(3) == pytest.approx(
        ConstantAcceptance(0.7).marginals(3)
    )
    table = EmpiricalAcceptance((0.9, 0.6, 0.3, 0.1))
    assert table.marginals(3) == pytest.approx([0.9, 0.6, 0.3])
    assert expected_accepted_tokens(table.marginals(4)) == pytest.approx(2.9)
    with pytest.raises(ValueError, match="4 positions, 5 asked"):
        table.marginals(5)


def test_distribution_sums_to_one_and_truncation_keeps_the_law() -> None:
    marginals = np.array([0.9, 0.5, 0.2])
    assert accepted_distribution(marginals) == pytest.approx([0.1, 0.4, 0.3, 0.2])
    u = np.linspace(0, 1, 1000, endpoint=False)
    full = draw_accepted(u, marginals, np.full(u.size, 3))
    cut = draw_accepted(u, marginals, np.full(u.size, 1))  # budget left 1 draft
    assert np.array_equal(cut, np.minimum(full, 1))
    assert np.mean(cut) == pytest.approx(0.9, abs=1e-3)


def test_speculator_counts_positions_and_steps() -> None:
    # Marginals 1, 1, 0: every verify accepts exactly min(d, 2) drafts.
    spec = Speculator(3, np.array([1.0, 1.0, 0.0]), np.random.default_rng(0), 4)
    assert spec.accept([3, 1, 2]) == [2, 1, 2]
    assert spec.num_drafts(4) == 3
    assert spec.num_drafts(5) == 0  # more running than disable_by_batch_size
    spec.count_steps(3, 1)
    spec.count_steps(0, 5)
    s = spec.stats
    assert (s.num_verifies, s.num_draft_tokens, s.num_accepted_tokens) == (3, 6, 5)
    assert s.drafts_per_position.tolist() == [3, 2, 1]
    assert s.accepted_per_position.tolist() == [3, 2, 0]
    assert (s.num_steps_speculating, s.num_steps_disabled) == (1, 5)


def test_speculator_draws_are_seeded_per_replica() -> None:
    from infsim.speculative.spec import SpeculativeSpec

    spec = SpeculativeSpec.model_validate(
        {"method": "ngram", "num_speculative_tokens": 4,
         "acceptance": {"kind": "constant", "rate": 0.6}}
    )  # fmt: skip
    drafts = [4] * 200
    a0 = Speculator.from_spec(spec, seed=3, replica_id=0).accept(drafts)
    assert Speculator.from_spec(spec, seed=3, replica_id=0).accept(drafts) == a0
    assert Speculator.from_spec(spec, seed=3, replica_id=1).accept(drafts) != a0
    assert Speculator.from_spec(spec, seed=4, replica_id=0).accept(drafts) != a0
