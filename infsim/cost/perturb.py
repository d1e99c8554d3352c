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

    def __post_init__(self) -> None:
        for name in OP_CLASSES:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"op multiplier {name} must be finite and > 0, got {value}")

    @classmethod
    def uniform(cls, factor: float) -> OpMultipliers:
        """Every class scaled alike (the cliff indicator's ±10 % step cost)."""
        return cls(factor, factor, factor, factor)

    def of_op(self, op: str) -> float:
        """The factor of a roofline op name (`ROOFLINE_OP_CLASS`); 1.0 for an unknown one."""
        cls = ROOFLINE_OP_CLASS.get(op)
        return 1.0 if cls is None else getattr(self, cls)


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
