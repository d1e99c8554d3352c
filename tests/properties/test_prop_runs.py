"""Whole runs through `api`: determinism, fast-forward exactness, time monotonicity.

Small synthetic or hand-built workloads on Llama-3.1-8B / H100 with the roofline cost
model; KV pressure comes from `engine.num_gpu_blocks_override`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim import api
from infsim.scenario.load import validate_scenario
from infsim.workload.trace import Trace


def scenario(
    *,
    fast_forward: bool = True,
    num_requests: int = 120,
    rate: float = 20.0,
    prompt: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    seed: int = 0,
    **engine: Any,
) -> Any:
    raw = {
        "name": "prop",
        "seed": seed,
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "workload": {
            "synthetic": {
                "num_requests": num_requests,
                "arrival": {"kind": "poisson", "rate_per_s": rate},
                "prompt_tokens": prompt
                or {"kind": "lognormal", "mean": 300, "sigma": 0.8, "min": 4, "max": 2000},
                "output_tokens": output
                or {"kind": "lognormal", "mean": 40, "sigma": 0.8, "min": 1, "max": 300},
            }
        },
        "engine": {"max_num_seqs": 32, "max_num_batched_tokens": 512, **engine},
        "simulation": {"fast_forward": fast_forward},
    }
    return validate_scenario(raw, "prop")


def col(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def assert_same_requests(a: api.RunResult, b: api.RunResult) -> None:
    for name in ("status", "replica_id", "first_scheduled_s", "first_token_s", "finish_s"):
        np.testing.assert_array_equal(col(a.requests, name), col(b.requests, name), name)
    for name in ("num_cached_tokens", "num_preemptions"):
        np.testing.assert_array_equal(col(a.requests, name), col(b.requests, name), name)


def check_times(res: api.RunResult) -> None:
    req = res.requests
    done = col(req, "status") == "finished"
    arrival, sched = col(req, "arrival_s")[done], col(req, "first_scheduled_s")[done]
    first, finish = col(req, "first_token_s")[done], col(req, "finish_s")[done]
    assert np.all(arrival <= sched)
    assert np.all(sched < first)
    assert np.all(first <= finish)
    one = col(req, "num_output_tokens")[done] == 1
    assert np.all(first[one] == finish[one])
    tl = res.timeline
    start, end = col(tl, "start_s"), col(tl, "end_s")
    assert np.all(start < end)
    for rid in np.unique(col(tl, "replica_id")):
        mine = col(tl, "replica_id") == rid
        assert np.all(start[mine][1:] >= end[mine][:-1])
    assert np.all(col(tl, "kv_used_blocks") <= res.resolved.kv.num_blocks)


# -- determinism --------------------------------------------------------------------------


def test_same_seed_byte_identical_outputs(tmp_path: Path) -> None:
    scen = scenario(num_requests=200, num_gpu_blocks_override=300, seed=7)
    api.run(scen).write(tmp_path / "a")
    api.run(scen).write(tmp_path / "b")
    for name in ("requests.parquet", "timeline.parquet", "scenario.resolved.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seed_differs() -> None:
    a = api.run(scenario(seed=1))
    b = api.run(scenario(seed=2))
    assert not np.array_equal(col(a.requests, "arrival_s"), col(b.requests, "arrival_s"))


# -- fast-forward exactness ----------------------------------------------------------------


@pytest.mark.parametrize(
    "engine",
    [
        {},
        {"num_gpu_blocks_override": 120},  # KV pressure: preemptions
        {"num_gpu_blocks_override": 120, "scheduling_policy": "priority"},
        {"enable_chunked_prefill": False, "max_num_batched_tokens": 4096},
        {"long_prefill_token_threshold": 64},
        # vLLM V0 without chunked prefill: prompts first, prefill-only steps; async output
        # processing on (the version rule)
        {"enable_chunked_prefill": False, "max_num_batched_tokens": 4096, "version": "0.6.0"},
        {
            "enable_chunked_prefill": False,
            "max_num_batched_tokens": 4096,
            "version": "0.6.0",
            "num_gpu_blocks_override": 120,
        },
    ],
    ids=[
        "plain",
        "kv_pressure",
        "priority_pressure",
        "no_chunking",
        "threshold",
        "v0",
        "v0_kv_pressure",
    ],
)
def test_fast_forward_same_request_times(engine: dict[str, Any]) -> None:
    fast = api.run(scenario(fast_forward=True, **engine))
    slow = api.run(scenario(fast_forward=False, **engine))
    assert_same_requests(fast, slow)
    if "num_gpu_blocks_override" in engine:
        assert fast.summary["requests"]["preemptions"] > 0
    check_times(fast)
    check_times(slow)
    # The fast run has fewer timeline rows but the same number of engine steps.
    tl_f, tl_s = fast.timeline, slow.timeline
    assert tl_f.num_rows < tl_s.num_rows
    assert col(tl_f, "num_steps").sum() == col(tl_s, "num_steps").sum() == tl_s.num_rows
    np.testing.assert_allclose(
        fast.summary["latency_s"]["itl"]["mean"], slow.summary["latency_s"]["itl"]["mean"], 1e-12
    )


def test_fast_forward_identical_itl_summary() -> None:
    fast = api.run(scenario(fast_forward=True, num_requests=300))
    slow = api.run(scenario(fast_forward=False, num_requests=300))
    assert fast.summary["latency_s"]["itl"] == slow.summary["latency_s"]["itl"]


def _run_trace(trace: Trace, **kwargs: Any) -> api.RunResult:
    resolved, _ = api.prepare(scenario(**kwargs), ".")
    return api.run_resolved(resolved, trace)


def prefix_trace(rng: np.random.Generator, n: int) -> Trace:
    """Requests built from 3 prefix families of 16-token hash blocks (so hits happen)."""
    arrivals = np.cumsum(rng.exponential(0.01, n))
    families = rng.integers(0, 3, n)
    shared = rng.integers(1, 6, n)
    hash_ids, prompts = [], []
    for i in range(n):
        own = int(rng.integers(0, 4))
        ids = [int(families[i]) * 100 + j for j in range(int(shared[i]))]
        ids += [10_000 + i * 10 + j for j in range(own)]
        hash_ids.append(ids)
        prompts.append(len(ids) * 16 + int(rng.integers(0, 16)) + 1)
    return Trace.from_columns(
        {
            "request_id": np.arange(n),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": rng.integers(1, 60, n),
            "prefix_hash_ids": hash_ids,
        },
        hash_block_size_tokens=16,
    )


@pytest.mark.parametrize("blocks", [None, 24])
def test_fast_forward_with_prefix_caching(blocks: int | None) -> None:
    trace = prefix_trace(np.random.default_rng(3), 200)
    engine: dict[str, Any] = {"block_size": 16, "enable_prefix_caching": True}
    if blocks:
        engine["num_gpu_blocks_override"] = blocks
    fast, slow = (_run_trace(trace, fast_forward=ff, **engine) for ff in (True, False))
    assert_same_requests(fast, slow)
    assert fast.summary["prefix_cache"]["hit_tokens"] > 0
    if blocks:
        assert fast.summary["requests"]["preemptions"] > 0
    check_times(fast)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    blocks=st.sampled_from([None, 60, 150]),
    max_seqs=st.integers(1, 16),
    budget=st.sampled_from([64, 256, 2048]),
    policy=st.sampled_from(["fcfs", "priority"]),
)
def test_fast_forward_exact_random_runs(
    seed: int, blocks: int | None, max_seqs: int, budget: int, policy: str
) -> None:
    engine: dict[str, Any] = {
        "max_num_seqs": max_seqs,
        "max_num_batched_tokens": budget,
        "scheduling_policy": policy,
    }
    if blocks:
        engine["num_gpu_blocks_override"] = blocks
    kwargs = {"num_requests": 60, "seed": seed, "rate": 30.0}
    fast = api.run(scenario(fast_forward=True, **kwargs, **engine))
    slow = api.run(scenario(fast_forward=False, **kwargs, **engine))
    assert_same_requests(fast, slow)
    check_times(fast)
    # One row per trace request, each finished or rejected (with a reason), never both.
    status = col(fast.requests, "status")
    assert fast.requests.num_rows == 60
    assert sorted(col(fast.requests, "request_id")) == list(range(60))
    assert set(status) <= {"finished", "rejected"}
    reasons = col(fast.requests, "reject_reason")
    assert all((r is not None) == (s == "rejected") for r, s in zip(reasons, status, strict=True))


def output_keyed_trace(rng: np.random.Generator, n: int) -> Trace:
    """Hash ids that cover the output blocks too (a later turn's prompt holds this turn's
    answer): requests of a family decode into blocks with the same keys, so registrations
    during decode runs compete with evictions of free cached blocks."""
    arrivals = np.cumsum(rng.exponential(0.02, n))
    families = rng.integers(0, 2, n)
    prompts = rng.integers(17, 80, n)
    outputs = rng.integers(16, 70, n)
    hash_ids = [
        [int(families[i]) * 1000 + j for j in range(-(-int(prompts[i] + outputs[i]) // 16))]
        for i in range(n)
    ]
    return Trace.from_columns(
        {
            "request_id": np.arange(n),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": outputs,
            "prefix_hash_ids": hash_ids,
        },
        hash_block_size_tokens=16,
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("blocks", [30, 60])
def test_fast_forward_exact_when_keys_cover_outputs(seed: int, blocks: int) -> None:
    # A run allocates request by request; stepping interleaves requests. With output-
    # covering keys and evictions that order decides what stays cached, so runs must stop
    # short of evicting (PrefixCachingKV.num_free_blocks_for_run).
    trace = output_keyed_trace(np.random.default_rng(seed), 80)
    engine = {"block_size": 16, "enable_prefix_caching": True, "num_gpu_blocks_override": blocks}
    fast, slow = (_run_trace(trace, fast_forward=ff, **engine) for ff in (True, False))
    assert_same_requests(fast, slow)
    assert fast.summary["prefix_cache"] == slow.summary["prefix_cache"]
