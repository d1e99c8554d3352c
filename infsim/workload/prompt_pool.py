"""Requests drawn from a pool of prompts, as benchmark clients send them.

Benchmarks (`vllm bench serve` on a dataset, GuideLLM, AIPerf) send prompts from a finite
set, many of which repeat or share a system prompt, so a server with prefix caching
reuses their KV blocks. The pool is N groups × M prompts:

    prompt (g, q) = [system prompt of group g][question q of group g]
    system prompt length   drawn once per group (`system_prompt_tokens`)
    question length        drawn once per prompt (the synthetic `prompt_tokens`)
    each request           one prompt, cycled in order (request i → prompt i mod N·M) or
                           drawn uniformly; its output length drawn per request

Prefix identity (hash ids per `hash_block_size_tokens` block, full blocks of the prompt):
blocks lying wholly inside group g's system prompt carry ids shared by the whole group;
the other blocks carry the prompt's own ids, so a repeated prompt matches in full and two
prompts of one group share their system prompt's blocks.

Draw order (fixed, for determinism): arrival gaps, system prompt lengths (one per group),
question lengths (one per prompt, group by group), prompt choices (uniform only), output
lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from infsim.limits import REQUESTS
from infsim.workload.columns import hash_ids_from_runs
from infsim.workload.synthetic import ArrivalProcess, LengthSampler, arrival_times_s
from infsim.workload.trace import Trace


@dataclass(frozen=True)
class PromptPool:
    num_groups: int
    prompts_per_group: int
    system_prompt_tokens: LengthSampler
    choice: Literal["cycle", "uniform"] = "uniform"
    hash_block_size_tokens: int = 16

    @property
    def num_prompts(self) -> int:
        return self.num_groups * self.prompts_per_group


def generate_pool_requests(
    num_requests: int,
    arrivals: ArrivalProcess,
    question_tokens: LengthSampler,
    output_tokens: LengthSampler,
    pool: PromptPool,
    rng: np.random.Generator,
) -> Trace:
    """Single-turn requests whose prompts come from `pool` (module docstring)."""
    REQUESTS.check(num_requests, "num_requests", "synthetic workload")
    REQUESTS.check(pool.num_prompts, "prompt_pool: num_groups × prompts_per_group",
                   "synthetic workload")  # fmt: skip
    arrival_s = arrival_times_s(arrivals, num_requests, rng)
    system = np.maximum(pool.system_prompt_tokens.sample(pool.num_groups, rng), 0)
    question = np.maximum(question_tokens.sample(pool.num_prompts, rng), 1)
    if pool.choice == "cycle":
        prompt = np.arange(num_requests, dtype=np.int64) % pool.num_prompts
    else:
        prompt = rng.integers(0, pool.num_prompts, num_requests)
    output = np.maximum(output_tokens.sample(num_requests, rng), 1)
    group_of_prompt = np.arange(pool.num_prompts) // pool.prompts_per_group
    prompt_tokens = system[group_of_prompt] + question  # per prompt
    columns = {
        "arrival_s": arrival_s,
        "num_prompt_tokens": prompt_tokens[prompt],
        "num_output_tokens": output,
        "prefix_hash_ids": _hash_ids(pool, system, prompt_tokens, group_of_prompt, prompt),
    }
    return Trace.from_columns(
        columns, hash_block_size_tokens=pool.hash_block_size_tokens, source="synthetic-pool"
    )


def _hash_ids(
    pool: PromptPool,
    system: np.ndarray,
    prompt_tokens: np.ndarray,
    group_of_prompt: np.ndarray,
    prompt: np.ndarray,
):
    """Each request's ids: its group's shared system-prompt ids, then its prompt's own."""
    block = pool.hash_block_size_tokens
    shared = system // block  # per group: blocks wholly inside the system prompt
    group_base = np.cumsum(shared) - shared
    own = prompt_tokens // block - shared[group_of_prompt]  # per prompt
    prompt_base = int(shared.sum()) + np.cumsum(own) - own
    group = group_of_prompt[prompt]
    n_shared, n_own = shared[group], own[prompt]
    starts = np.stack([group_base[group], prompt_base[prompt]], axis=1).ravel()
    lengths = np.stack([n_shared, n_own], axis=1).ravel()
    return hash_ids_from_runs(starts, lengths, n_shared + n_own)
