"""The speculation policy a replica's scheduler is given (pure: no clock, no simpy).

Per step the scheduler asks `num_drafts(num_running)` for k (0 while the batch is above
`disable_by_batch_size`); after the step it hands `accept` the drafts each verifying
request carried, in batch order, and gets the accepted counts back. The draws come from
the replica's own `numpy.random.Generator` (seeded from the scenario seed and the replica
index), one uniform per verifying request per step, in batch order, so the same scenario
and seed give the same acceptances whatever the other replicas do.

`SpecDecodingStats` mirrors vLLM's counters of the same name (drafts, draft tokens,
accepted tokens, accepted per position) plus the step counts that give the fraction of
steps in which speculation was switched off.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from infsim.speculative.spec import SpeculativeSpec

SEED_TAG = 0x5EC0DE
"""Mixed into the acceptance stream's seed so it never coincides with another purpose's."""
UNIFORM_BLOCK = 4096
"""Uniforms drawn from the acceptance stream at a time (`Speculator.accept`)."""


@dataclass(slots=True)
class SpecDecodingStats:
    """Counters over a run (one replica). A "verify" is one request in one step with ≥ 1
    draft; its accepted tokens are the accepted drafts plus the target's own token."""

    num_positions: int
    num_verifies: int = 0
    num_draft_tokens: int = 0
    num_accepted_tokens: int = 0  # accepted drafts, without the target's own token
    num_steps_speculating: int = 0
    num_steps_disabled: int = 0
    drafts_per_position: np.ndarray = field(init=False)
    accepted_per_position: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.drafts_per_position = np.zeros(self.num_positions, dtype=np.int64)
        self.accepted_per_position = np.zeros(self.num_positions, dtype=np.int64)

    def add(self, other: SpecDecodingStats) -> None:
        self.num_verifies += other.num_verifies
        self.num_draft_tokens += other.num_draft_tokens
        self.num_accepted_tokens += other.num_accepted_tokens
        self.num_steps_speculating += other.num_steps_speculating
        self.num_steps_disabled += other.num_steps_disabled
        self.drafts_per_position += other.drafts_per_position
        self.accepted_per_position += other.accepted_per_position


class Speculator:
    """Draft length per step and acceptance draws for one replica."""

    def __init__(
        self,
        num_speculative_tokens: int,
        marginals: np.ndarray,
        rng: np.random.Generator,
        disable_by_batch_size: int | None = None,
    ) -> None:
        if len(marginals) != num_speculative_tokens:
            raise ValueError("one marginal per draft position is needed")
        self.k = num_speculative_tokens
        self.marginals = np.asarray(marginals, dtype=np.float64)
        # -m_i, non-decreasing: bisect_left counts the m_i above u as searchsorted does.
        self._neg_marginals = (-self.marginals).tolist()
        self.rng = rng
        # The stream's uniforms, drawn UNIFORM_BLOCK at a time and handed out in order:
        # the same values in the same order as one `rng.random(n)` per step (each double
        # takes the generator's next output), at a fraction of numpy's per-call cost.
        self._uniforms: list[float] = []
        self._next_uniform = 0
        self.disable_by_batch_size = disable_by_batch_size
        self._stats = SpecDecodingStats(num_speculative_tokens)
        # Verifies per number of drafts and per number accepted (0..k), folded into the
        # stats' per-position counters when they are read.
        self._num_by_drafts = [0] * (num_speculative_tokens + 1)
        self._num_by_accepted = [0] * (num_speculative_tokens + 1)

    @property
    def stats(self) -> SpecDecodingStats:
        """The counters so far (the per-position ones brought up to date)."""
        s = self._stats
        for counts, per_position in (
            (self._num_by_drafts, s.drafts_per_position),
            (self._num_by_accepted, s.accepted_per_position),
        ):
            if any(counts):  # position i: the verifies with more than i drafts (accepted)
                per_position += _num_above(np.asarray(counts, dtype=np.int64))
                counts[:] = [0] * len(counts)
        return s

    @classmethod
    def from_spec(cls, spec: SpeculativeSpec, seed: int, replica_id: int) -> Speculator:
        k = spec.num_speculative_tokens
        rng = np.random.default_rng((seed, SEED_TAG, replica_id))
        marginals = spec.acceptance.build().marginals(k)
        return cls(k, marginals, rng, spec.disable_by_batch_size)

    def num_drafts(self, num_running: int) -> int:
        """Drafts per decoding request in a step that starts with `num_running` running."""
        limit = self.disable_by_batch_size
        return 0 if limit is not None and num_running > limit else self.k

    def count_steps(self, draft_k: int, num_steps: int) -> None:
        """Record `num_steps` applied steps that did (draft_k > 0) or did not speculate."""
        if draft_k:
            self._stats.num_steps_speculating += num_steps
        else:
            self._stats.num_steps_disabled += num_steps

    def accept(self, num_drafts: list[int]) -> list[int]:
        """Accepted drafts for each verifying request of a step (batch order): one uniform
        u each from the replica's stream, and a = min(#{m_i > u}, d), `draw_accepted`
        row by row (a step verifies tens of rows: numpy's per-call cost would dominate)."""
        neg = self._neg_marginals
        n = len(num_drafts)
        start, stop = self._next_uniform, self._next_uniform + n
        if stop > len(self._uniforms):  # the rest of the block, then a new one
            fresh = self.rng.random(max(UNIFORM_BLOCK, n)).tolist()
            self._uniforms = self._uniforms[start:] + fresh
            start, stop = 0, n
        self._next_uniform = stop
        u = self._uniforms[start:stop]
        accepted = [min(bisect_left(neg, -x), d) for x, d in zip(u, num_drafts, strict=True)]
        s = self._stats
        s.num_verifies += len(num_drafts)
        s.num_draft_tokens += sum(num_drafts)
        s.num_accepted_tokens += sum(accepted)
        by_drafts, by_accepted = self._num_by_drafts, self._num_by_accepted
        for d, a in zip(num_drafts, accepted, strict=True):
            by_drafts[d] += 1
            by_accepted[a] += 1
        return accepted


def _num_above(counts: np.ndarray) -> np.ndarray:
    """#{values > i} for i = 0..k−1 from the counts of each value 0..k: a reversed
    cumulative histogram."""
    at_least = np.cumsum(counts[::-1])[::-1]
    return at_least[1:]
