"""Acceptance models of speculative decoding: how many of k drafts the target accepts.

Verification accepts drafts left to right and stops at the first rejection; the target
then adds one token of its own (the correction, or the bonus token after k accepted
drafts). So a verify step of one request emits a + 1 tokens, a ∈ {0..k} accepted drafts.

Every model is described by its marginals m_i = P(a ≥ i + 1), i = 0..k−1: the probability
that draft position i is accepted (which needs every earlier one accepted), the number
vLLM logs as the per-position acceptance rate. They are non-increasing, and

    E[a + 1] = 1 + Σ_i m_i                   (accepted tokens per verify step)

For a constant conditional rate α, m_i = α^(i+1) and E[a + 1] = (1 − α^(k+1)) / (1 − α),
the expected-length formula of Leviathan et al. (2023, eq. 1).

Drawing uses one uniform u per request and step: a = #{i < d : u < m_i} for d drafts.
Since the m_i are non-increasing this is inversion of a's distribution, so
P(a ≥ i + 1) = m_i exactly, and a request truncated to d < k drafts (token budget) gets
the same law restricted to its first d positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class AcceptanceModel(Protocol):
    def marginals(self, num_positions: int) -> np.ndarray:
        """m_i = P(draft position i accepted), i = 0..num_positions−1 (non-increasing)."""
        ...


@dataclass(frozen=True, slots=True)
class ConstantAcceptance:
    """Each position accepted with probability `rate` given the earlier ones were."""

    rate: float

    def marginals(self, num_positions: int) -> np.ndarray:
        return np.cumprod(np.full(num_positions, self.rate))


@dataclass(frozen=True, slots=True)
class GeometricAcceptance:
    """Position i accepted with probability rate·decay^i given the earlier ones were."""

    rate: float
    decay: float

    def marginals(self, num_positions: int) -> np.ndarray:
        return np.cumprod(self.rate * self.decay ** np.arange(num_positions))


@dataclass(frozen=True, slots=True)
class EmpiricalAcceptance:
    """A measured table of marginals (vLLM's per-position acceptance rates)."""

    per_position: tuple[float, ...]

    def marginals(self, num_positions: int) -> np.ndarray:
        if num_positions > len(self.per_position):
            raise ValueError(
                f"the acceptance table has {len(self.per_position)} positions, "
                f"{num_positions} asked"
            )
        return np.asarray(self.per_position[:num_positions], dtype=np.float64)


def expected_accepted_tokens(marginals: np.ndarray) -> float:
    """E[a + 1]: tokens one verify step emits per request, the target's own included."""
    return 1.0 + float(np.sum(marginals))


def constant_rate_mean(rate: float, k: int) -> float:
    """(1 − α^(k+1)) / (1 − α): mean accepted tokens per step at constant rate α."""
    if rate == 1.0:
        return float(k + 1)
    return (1.0 - rate ** (k + 1)) / (1.0 - rate)


def accepted_distribution(marginals: np.ndarray) -> np.ndarray:
    """P(a = j), j = 0..k, from the marginals (differences of the survival function)."""
    survival = np.concatenate([[1.0], marginals, [0.0]])
    return survival[:-1] - survival[1:]


def draw_accepted(u: np.ndarray, marginals: np.ndarray, num_drafts: np.ndarray) -> np.ndarray:
    """Accepted drafts per request: #{i < d : u < m_i}, by inversion (see module doc).

    `u` are uniforms in [0, 1), one per request; `num_drafts` the drafts d ≤ k each one
    verifies. `-marginals` is non-decreasing, so searchsorted counts the m_i above u.
    """
    above = np.searchsorted(-marginals, -u, side="left")
    return np.minimum(above, num_drafts)
