"""Synthetic requests drawn from a pool of prompts (groups × prompts), with prefix identity
that makes repeats and shared system prompts hit the prefix cache."""

from __future__ import annotations

import numpy as np
import pytest

from infsim import api
from infsim.errors import InputError
from infsim.scenario.load import validate_scenario
from infsim.workload.prompt_pool import PromptPool, generate_pool_requests
from infsim.workload.synthetic import FixedLengths, PoissonArrivals


def _pool_trace(choice: str = "cycle", num_requests: int = 12, seed: int = 0):
    pool = PromptPool(2, 3, FixedLengths(40), choice, hash_block_size_tokens=16)
    return generate_pool_requests(num_requests, PoissonArrivals(5.0), FixedLengths(24),
                                  FixedLengths(8), pool, np.random.default_rng(seed))  # fmt: skip


def test_cycle_repeats_prompts_and_groups_share_their_system_prompt() -> None:
    trace = _pool_trace("cycle")
    ids = trace.prefix_hash_ids_list()
    assert trace.num_prompt_tokens.tolist() == [64] * 12  # 40 system + 24 question
    # 64 // 16 = 4 full blocks: 2 inside the 40-token system prompt, 2 of the prompt's own.
    assert all(len(i) == 4 for i in ids)
    assert ids[0] == ids[6]
    assert ids[5] == ids[11]
    assert ids[0][:2] == ids[1][:2] == ids[2][:2] == [0, 1]  # group 0's system blocks
    assert ids[3][:2] == ids[4][:2] == [2, 3]  # group 1's
    assert ids[0][2:] != ids[1][2:]  # distinct questions
    assert len({tuple(i[2:]) for i in ids}) == 6


def test_uniform_choice_is_seeded() -> None:
    a, b = _pool_trace("uniform", 200, seed=4), _pool_trace("uniform", 200, seed=4)
    assert a.prefix_hash_ids_list() == b.prefix_hash_ids_list()
    assert len({tuple(i) for i in a.prefix_hash_ids_list()}) == 6  # every prompt drawn


RAW = {
    "name": "pool",
    "seed": 2,
    "model": "llama-3.1-8b",
    "hardware": {"gpu": "h100-sxm"},
    "workload": {
        "synthetic": {
            "num_requests": 400,
            "arrival": {"kind": "poisson", "rate_per_s": 10},
            "prompt_tokens": {
                "kind": "lognormal",
                "mean": 200,
                "sigma": 0.5,
                "min": 16,
                "max": 2000,
            },
            "output_tokens": {"kind": "fixed", "value": 32},
            "prompt_pool": {
                "num_groups": 4,
                "prompts_per_group": 10,
                "system_prompt_tokens": {"kind": "fixed", "value": 1024},
            },
        }
    },
}


def test_a_pool_scenario_hits_the_prefix_cache() -> None:
    rs, trace = api.prepare(validate_scenario(RAW, "pool.yaml"))
    result = api.run_resolved(rs, trace)
    cached = np.asarray(result.requests.column("num_cached_tokens"))
    prompt = np.asarray(result.requests.column("num_prompt_tokens"))
    # 40 distinct prompts among 400 requests: most requests repeat a prompt whole, and the
    # first of each group's others still hit its 1,024-token system prompt.
    assert cached.sum() / prompt.sum() > 0.8
    off = validate_scenario({**RAW, "engine": {"enable_prefix_caching": False}}, "pool.yaml")
    rs_off, trace_off = api.prepare(off)
    result_off = api.run_resolved(rs_off, trace_off)
    assert np.asarray(result_off.requests.column("num_cached_tokens")).sum() == 0


def test_pool_with_sessions_is_refused() -> None:
    raw = {**RAW, "workload": {"synthetic": {
        **RAW["workload"]["synthetic"], "num_requests": None,
        "sessions": {"num_sessions": 3, "turns": {"kind": "fixed", "value": 2},
                     "think_time": {"kind": "fixed", "value_s": 1.0}},
    }}}  # fmt: skip
    with pytest.raises(InputError, match="prompt_pool draws single-turn requests"):
        validate_scenario(raw, "pool.yaml")
