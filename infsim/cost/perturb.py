"""Per-op-class multipliers on a cost model's prices: the hook for cost-model uncertainty.

A prediction interval for the cost model's own error (issue 18, `infsim.uncertainty`)
replays the scenario with every op class priced `factor` times its table (or roofline)
value, one factor per class drawn per replication. The classes follow the step's terms:

    dense      per-layer work that scales with batched tokens: the GEMMs (QKV, O, MLP
               or MoE and its router), per-token ops (norms, rotary, activation), the TP
               all-reduces and EP collectives
    attention  prefill and decode attention
    lm_head    LM head and sampler rows
    overhead   the per-step host overhead (fixed + per sequence + per prefill)

and, across them, one factor on the **prefill part** of a step (`prefill`; the model
error's TTFT-side factor, `infsim.uncertainty.model_error`), on top of the class factors.
The split of a step (`prefill_rows`; both cost models honour it):

    rows       a row computing more than 1 + draft_k tokens is a prefill chunk; decode and
               speculative-verify rows (1 + d ≤ 1 + draft_k tokens) are decode (the rule
               the calibrated model already uses to pick an attention lookup)
    dense      the prefill rows' token share T_p / T of the dense work (every batched
               token is one row of each GEMM, per-token op and collective): dense ×
               (1 + (prefill − 1) · T_p / T)
    attention  the prefill rows' attention: the calibrated model prices each chunk apart
               (its prefill lookups are scaled); the roofline prices the batch's totals,
               max(pairs · a, KV · b), so its share is the prefill rows' priced alone,
               A_p / (A_p + A_d) with A_x = max(pairs_x · a, KV_x · b)
    untouched  the LM head (its rows are the sampling requests; a prompt's last chunk
               samples one row like a decode) and the step overhead, per-prefill terms
               included (the host's time is the `overhead` class's; a measured
               per-prefill term is a correction to the per-sequence one and may be
               negative, so scaling it alone could price a slower prefill cheaper)

So a prefill-only step's dense work and attention move by exactly the factor (its LM
head and overhead not), and a decode-only step (decode runs included) not at all. The
models take the split only when `prefill` ≠ 1 (the roofline builds a subclass, the
calibrated model scales its grids and checks one number per mixed step), so a run
without it prices every step as before.

`scaling(multipliers)` makes every cost model built inside the `with` block (the
factory's `_cost_model`: the scenario's own, each pipeline stage's, a draft model's) apply
them; outside one, models are built exactly as before (`active()` is None), so runs
without intervals are untouched. The multipliers are plain data: a replication draws them
from its own seeded generator, so the same seed gives the same prices. A contextvar rather
than a scenario field: an uncertainty draw is not part of what the scenario describes, and
the simulator never needs to know it runs a perturbed model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

OP_CLASSES = ("dense", "attention", "lm_head", "overhead")

ROOFLINE_OP_CLASS = {
    "qkv_proj": "dense", "o_proj": "dense", "mlp": "dense", "elementwise": "dense",
    "all_reduce": "dense", "all_to_all": "dense", "all_gather": "dense",
    "lm_head": "lm_head", "attention": "attention", "overhead": "overhead",
}  # fmt: skip
"""The roofline's op names (`RooflineCostModel._dense_ops` and `op_times_s`) → class."""


@dataclass(frozen=True, slots=True)
class OpMultipliers:
    """Price factors per op class (1.0 = as the table or roofline says; all > 0)."""

    dense: float = 1.0
    attention: float = 1.0
    lm_head: float = 1.0
    overhead: float = 1.0
    prefill: float = 1.0
    """On the prefill part of a step (module doc), on top of the class factors."""

    def __post_init__(self) -> None:
        for name in (*OP_CLASSES, "prefill"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"op multiplier {name} must be finite and > 0, got {value}")

    @classmethod
    def uniform(cls, factor: float) -> OpMultipliers:
        """Every class scaled alike (the cliff indicator's ±10 % step cost; `prefill` 1:
        the prefill part already moves with its classes)."""
        return cls(factor, factor, factor, factor)

    def of_op(self, op: str) -> float:
        """The factor of a roofline op name (`ROOFLINE_OP_CLASS`); 1.0 for an unknown one."""
        cls = ROOFLINE_OP_CLASS.get(op)
        return 1.0 if cls is None else getattr(self, cls)


def prefill_rows(batch: Any) -> tuple[int, int, int]:
    """(tokens, query·key pairs, KV tokens read) of the batch's prefill rows: those
    computing more than 1 + `draft_k` tokens (module doc; pairs and KV tokens as
    `infsim.cost.base.attention_work` counts them)."""
    max_decode_q = 1 + batch.draft_k
    tokens = pairs = kv_tokens = 0
    for q, c in zip(batch.num_new_tokens, batch.num_context_tokens, strict=True):
        if q > max_decode_q:
            tokens += q
            pairs += q * c + q * (q + 1) // 2
            kv_tokens += c + q
    return tokens, pairs, kv_tokens


_ACTIVE: ContextVar[OpMultipliers | None] = ContextVar("infsim_op_multipliers", default=None)


def active() -> OpMultipliers | None:
    """The multipliers cost models built now apply (None: none, the normal case)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def scaling(multipliers: OpMultipliers | None) -> Iterator[None]:
    """Cost models built inside the block apply `multipliers` (None: unchanged)."""
    token = _ACTIVE.set(multipliers)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
