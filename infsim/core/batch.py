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

from dataclasses import dataclass

from infsim.core.request import RequestState


@dataclass(slots=True, init=False)  # __init__ written out: the compiled build compiles it
class Batch:
    requests: list[RequestState]
    num_new_tokens: list[int]
    num_context_tokens: list[int]
    num_batched_tokens: int
    num_sampled: int
    num_admitted: int
    num_preempted: int
    num_spec_tokens: int
    draft_k: int
    attn_pairs: int
    attn_kv_tokens: int
    attn_rows: int
    num_decode_rows: int
    decode_limit: int

    def __init__(  # noqa: PLR0913 - every field, as the dataclass's own __init__ takes them
        self,
        requests: list[RequestState] | None = None,
        num_new_tokens: list[int] | None = None,
        num_context_tokens: list[int] | None = None,
        num_batched_tokens: int = 0,
        num_sampled: int = 0,
        num_admitted: int = 0,
        num_preempted: int = 0,
        num_spec_tokens: int = 0,
        draft_k: int = 0,
        attn_pairs: int = 0,
        attn_kv_tokens: int = 0,
        attn_rows: int = 0,
        num_decode_rows: int = 0,
        decode_limit: int = 0,
    ) -> None:
        self.requests = [] if requests is None else requests
        self.num_new_tokens = [] if num_new_tokens is None else num_new_tokens
        self.num_context_tokens = [] if num_context_tokens is None else num_context_tokens
        self.num_batched_tokens = num_batched_tokens
        self.num_sampled = num_sampled
        self.num_admitted = num_admitted
        self.num_preempted = num_preempted
        self.num_spec_tokens = num_spec_tokens
        self.draft_k = draft_k
        self.attn_pairs = attn_pairs
        self.attn_kv_tokens = attn_kv_tokens
        self.attn_rows = attn_rows
        self.num_decode_rows = num_decode_rows
        self.decode_limit = decode_limit

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


@dataclass(slots=True, init=False)  # not frozen, __init__ written out: built once per step
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
    num_draft_tokens: int  # drafts verified in the step (speculative decoding)
    num_accepted_tokens: int  # of which accepted

    def __init__(
        self,
        finished: list[RequestState],
        num_first_tokens: int,
        itl_step_s: list[float],
        itl_step_count: list[int],
        itl_other_s: list[float],
        num_draft_tokens: int = 0,
        num_accepted_tokens: int = 0,
    ) -> None:
        self.finished = finished
        self.num_first_tokens = num_first_tokens
        self.itl_step_s = itl_step_s
        self.itl_step_count = itl_step_count
        self.itl_other_s = itl_other_s
        self.num_draft_tokens = num_draft_tokens
        self.num_accepted_tokens = num_accepted_tokens


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
