"""Speculative decoding's proposer cost, and the cost model that adds it to a step.

A step that speculates (`batch.draft_k = k > 0`) also runs the proposer, which makes k
drafts for every request that samples in the step (vLLM V1 proposes right after the
target's forward pass). For a draft model or an EAGLE/MTP head this is k sequential
forward passes, as in vLLM's `EagleProposer.propose` / `DraftModelProposer`:

    pass 0      the step's own rows (every q_i over c_i: the proposer keeps its own KV,
                so prompt chunks go through it too); logits for the sampling rows
    pass 1..k−1 one token per sampling request, on top of c_i + q_i + j − 1 tokens

Each pass is priced by a cost model of the proposer on the same hardware (and the same
calibration table), minus its per-step CPU overhead (the passes run inside the engine
step whose overhead the target already pays):

    draft_model  the draft model's own cost model (its ModelSpec, same TP and precisions)
    eagle, mtp   one decoder layer of the target's shape plus the target's LM head (EAGLE
                 reuses the target's vocabulary head; MTP modules are one layer too)
    ngram        no GPU work: prompt lookup on the CPU

plus `draft_overhead_s` per speculating step for all methods (0 unless set).

`SpeculativeCostModel` wraps the target's cost model: `step_time_s` = target + proposer.
It keeps the total proposer time it priced (`draft_time_s`) for the run summary; that
running sum is its only state and never feeds back into a price.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from infsim.core.batch import Batch
from infsim.cost.base import CostModel
from infsim.cost.config import ReplicaConfig
from infsim.cost.factory import build_cost_model

if TYPE_CHECKING:
    import numpy as np


def _compute_s(cost_model: CostModel, batch: Batch) -> float:
    """Step time without the per-step CPU overhead (GPU passes inside one engine step)."""
    ops = cost_model.op_times_s(batch)
    return sum(v for name, v in ops.items() if name != "overhead")


class ProposerCost:
    """k forward passes of a proposer model per speculating step (see module doc)."""

    def __init__(self, proposer: CostModel, overhead_s: float = 0.0) -> None:
        self.proposer = proposer
        self.overhead_s = overhead_s
        if hasattr(proposer, "tally_overhead"):  # coverage: the passes run without it
            proposer.tally_overhead = False
        # A model that prices a step without its overhead directly (the roofline: the
        # same floats, without building the per-op dict) does so; others sum their ops.
        fast = getattr(proposer, "compute_time_s", None)
        self._compute_s = fast if fast is not None else partial(_compute_s, proposer)
        # Passes 1..k−1 (one token per row) priced from their sums alone where the model
        # can (the roofline); others get the batch.
        self._decode_pass_s = getattr(proposer, "decode_pass_time_s", None)

    def draft_time_s(self, batch: Batch) -> float:
        first = Batch(
            requests=batch.requests,
            num_new_tokens=batch.num_new_tokens,
            num_context_tokens=batch.num_context_tokens,
            num_batched_tokens=batch.num_batched_tokens,
            num_sampled=batch.num_sampled,
            draft_k=batch.draft_k,  # verify rows keep decode-like attention
            attn_pairs=batch.attn_pairs,  # the same rows: the step's running sums
            attn_kv_tokens=batch.attn_kv_tokens,
            attn_rows=batch.attn_rows,
        )
        total = self.overhead_s + self._compute_s(first)
        if batch.draft_k < 2 or not batch.num_sampled:
            return total
        # Sampling rows are those reaching num_tokens (drafts past it included).
        ends = [
            c + q
            for req, q, c in zip(
                batch.requests, batch.num_new_tokens, batch.num_context_tokens, strict=True
            )
            if c + q >= req.num_prompt_tokens + req.num_output_done  # req.num_tokens
        ]
        n = len(ends)
        sum_ends = sum(ends)
        # Pass j + 1 computes one token on top of e + j per row: q·c + q(q+1)/2 = c + 1
        # pairs and as many KV tokens, so both sums are Σe + n·(j + 1) (attention_work's).
        decode_pass_s = self._decode_pass_s
        ones = [1] * n
        for j in range(batch.draft_k - 1):
            work = sum_ends + n * (j + 1)
            if decode_pass_s is not None:  # priced from the sums alone
                total += decode_pass_s(n, work)
                continue
            step = Batch(
                requests=batch.requests,  # not read by the cost models
                num_new_tokens=ones,
                num_context_tokens=[e + j for e in ends],
                num_batched_tokens=n,
                num_sampled=n,
                attn_pairs=work,
                attn_kv_tokens=work,
                attn_rows=n,
            )
            total += self._compute_s(step)
        return total


class FixedCost:
    """A proposer without GPU work (n-gram lookup): a fixed time per speculating step."""

    def __init__(self, overhead_s: float = 0.0) -> None:
        self.overhead_s = overhead_s

    def draft_time_s(self, batch: Batch) -> float:
        return self.overhead_s


class SpeculativeCostModel:
    """The target's cost model plus the proposer's time in steps that speculate."""

    def __init__(self, target: CostModel, proposer: ProposerCost | FixedCost) -> None:
        self.target = target
        self.proposer = proposer
        self.draft_time_s = 0.0  # Σ proposer time priced so far (run summary)

    def step_time_s(self, batch: Batch) -> float:
        step_s = self.target.step_time_s(batch)
        if batch.draft_k:
            draft_s = self.proposer.draft_time_s(batch)
            self.draft_time_s += draft_s
            step_s += draft_s
        return step_s

    def decode_run_times_s(
        self, num_seqs: int, sum_context_tokens: int, num_steps: int
    ) -> list[float] | np.ndarray:
        # Runs are only fast-forwarded while no drafts are proposed: the target alone.
        return self.target.decode_run_times_s(num_seqs, sum_context_tokens, num_steps)

    def op_times_s(self, batch: Batch) -> dict[str, float]:
        ops = dict(self.target.op_times_s(batch))
        ops["draft"] = self.proposer.draft_time_s(batch) if batch.draft_k else 0.0
        return ops

    def __getattr__(self, name: str) -> Any:
        # Anything else the CostModel protocol gains is the target's business.
        return getattr(self.target, name)


def speculative_cost_model(cfg: ReplicaConfig, target: CostModel) -> SpeculativeCostModel:
    """Wrap `target` with the proposer cost of the replica's speculative decoding."""
    spec = cfg.speculative
    if spec is None:
        raise ValueError("the scenario has no engine.speculative section")
    if spec.method == "ngram":
        return SpeculativeCostModel(target, FixedCost(spec.draft_overhead_s))
    if cfg.draft_model is None:
        raise ValueError(f"method {spec.method} needs the resolved proposer model")
    # The draft model, or for eagle/mtp a one-layer copy of the target (speculative/memory.py):
    # the same cost-model kind and calibration table as the target, on the same GPU.
    proposer = build_cost_model(replace(cfg, model=cfg.draft_model))
    return SpeculativeCostModel(target, ProposerCost(proposer, spec.draft_overhead_s))
