"""The scheduler → cost-model boundary: one engine step.

A `Batch` maps each scheduled request to its number of new tokens, as vLLM's
`SchedulerOutput.num_scheduled_tokens`. Prefill, chunked prefill, prefix hits and decode
are all the same thing here: `num_new_tokens[i]` tokens computed on top of
`num_context_tokens[i]` already in the KV cache. `num_sampled` counts requests whose
step reaches the end of their known tokens, so the step samples a token for them (these
rows go through the LM head).

Speculative decoding (vLLM's `scheduled_spec_decode_tokens`): a decoding request verifying
d drafts is scheduled 1 + d tokens, so its row ends d tokens past `num_tokens`;
`num_spec_tokens` sums those d over the batch (they are part of `num_batched_tokens`, and
each needs logits, so the LM head prices `num_sampled + num_spec_tokens` rows).
`draft_k` is the number of drafts the proposer makes per sampling request at the end of
this step (0: speculation is off, or switched off for this step).

Running sums for the cost models: `attn_pairs` and `attn_kv_tokens` are Σ q·c + q(q+1)/2
and Σ c + q over the rows that `add` (or the scheduler's inlined adds) counted,
`attn_rows` of them; `attention_work` (infsim.cost.base) reads them instead of a pass
over the rows when `attn_rows` covers every row (a batch built from lists counts none).
`num_decode_rows`: the scheduler's whole-running-set decode block — the first
`num_decode_rows` rows are running requests each decoding one token (emitted before the
step, one token left to compute), which `on_batch_done` and the replica apply without
per-row checks; `decode_limit` is the fewest output tokens any of them had left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infsim.core.request import RequestState


@dataclass(slots=True)
class Batch:
    requests: list[RequestState] = field(default_factory=list)
    num_new_tokens: list[int] = field(default_factory=list)
    num_context_tokens: list[int] = field(default_factory=list)
    num_batched_tokens: int = 0
    num_sampled: int = 0
    num_admitted: int = 0
    num_preempted: int = 0
    num_spec_tokens: int = 0
    draft_k: int = 0
    attn_pairs: int = 0
    attn_kv_tokens: int = 0
    attn_rows: int = 0
    num_decode_rows: int = 0
    decode_limit: int = 0

    @property
    def num_seqs(self) -> int:
        return len(self.requests)

    def add(self, req: RequestState, num_new_tokens: int) -> None:
        self.requests.append(req)
        self.num_new_tokens.append(num_new_tokens)
        c = req.num_computed_tokens
        self.num_context_tokens.append(c)
        self.num_batched_tokens += num_new_tokens
        self.attn_pairs += num_new_tokens * c + num_new_tokens * (num_new_tokens + 1) // 2
        self.attn_kv_tokens += c + num_new_tokens
        self.attn_rows += 1
        end = c + num_new_tokens
        if end >= req.num_tokens:
            self.num_sampled += 1
            self.num_spec_tokens += end - req.num_tokens

    def remove(self, req: RequestState) -> None:
        i = self.requests.index(req)
        n = self.num_new_tokens[i]
        c = self.num_context_tokens[i]
        end = c + n
        if end >= req.num_tokens:
            self.num_sampled -= 1
            self.num_spec_tokens -= end - req.num_tokens
        self.num_batched_tokens -= n
        self.attn_pairs -= n * c + n * (n + 1) // 2
        self.attn_kv_tokens -= c + n
        self.attn_rows -= 1
        if i < self.num_decode_rows:
            self.num_decode_rows = 0  # no longer the whole running set
        del self.requests[i], self.num_new_tokens[i], self.num_context_tokens[i]


@dataclass(slots=True)  # not frozen: built once per step, and frozen __init__ is slow
class StepOutcome:
    """What a finished step (or run of decode steps) produced.

    ITL samples are recorded compactly: `itl_step_s[k]` occurred `itl_step_count[k]`
    times (requests that also emitted at the previous step end), `itl_other_s` lists
    the other gaps (after a preemption, or a chunked prefill of others in between).
    """

    finished: list[RequestState]
    num_first_tokens: int
    itl_step_s: list[float]
    itl_step_count: list[int]
    itl_other_s: list[float]
    num_draft_tokens: int = 0  # drafts verified in the step (speculative decoding)
    num_accepted_tokens: int = 0  # of which accepted


def batch_of(chunks: list[tuple[int, int]]) -> Batch:
    """A step of stand-in requests, one per (new tokens, cached tokens) pair: for pricing
    shapes with a cost model outside a simulation (reports, fits, tests)."""
    from infsim.core.request import RequestState

    batch = Batch()
    for i, (num_new, num_cached) in enumerate(chunks):
        req = RequestState(index=i, request_id=i, arrival_s=0.0,
                           num_prompt_tokens=num_cached + num_new, num_output_tokens=2)  # fmt: skip
        req.num_computed_tokens = num_cached
        batch.add(req, num_new)
    return batch
