"""Pipeline parallelism in the replica loop, with constant stage times (exact oracles).

The scenario's synthetic workload is ignored: each test injects its own trace. Stage time
τ = 0.5 s, activation send δ; every request has an 8-token prompt and the step budget is 8
tokens, so each batch holds exactly one request's prefill (independent batches).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infsim import api
from infsim.core.batch import Batch
from infsim.scenario.load import validate_scenario
from infsim.workload.trace import Trace

# Engine semantics without an API server in front (its own tests set the frontend section).
NO_FRONTEND = {"request_s": 0.0, "request_per_prompt_token_s": 0.0, "output_per_step_s": 0.0,
               "output_per_token_s": 0.0}  # fmt: skip


class ConstantPipeline:
    def __init__(self, num_stages: int, stage_s: float, send_s: float) -> None:
        self.num_stages, self.stage_s, self.send_s = num_stages, stage_s, send_s

    def stage_times_s(self, batch: Batch) -> list[float]:
        return [self.stage_s] * self.num_stages

    def send_times_s(self, batch: Batch) -> list[float]:
        return [self.send_s] * (self.num_stages - 1)


@pytest.fixture
def pipelined(constant_step, monkeypatch):
    def build(pp: int, stage_s: float, send_s: float, **engine):
        constant_step(stage_s)  # the whole-step model is unused under PP
        pipe = ConstantPipeline(pp, stage_s, send_s)
        monkeypatch.setattr("infsim.sim.engine.build_pipeline_cost", lambda _rs: pipe)
        raw = {
            "model": "llama-3.1-8b",
            "hardware": {"gpu": "h100-sxm"},
            "workload": {
                "synthetic": {
                    "num_requests": 1,
                    "arrival": {"kind": "poisson", "rate_per_s": 1},
                    "prompt_tokens": {"kind": "fixed", "value": 8},
                    "output_tokens": {"kind": "fixed", "value": 1},
                }
            },
            "deployment": {"pipeline_parallel": pp},
            "engine": {"max_num_seqs": 64, "max_num_batched_tokens": 8, **engine},
            "frontend": dict(NO_FRONTEND),
        }
        resolved, _ = api.prepare(validate_scenario(raw, "pp-test"), ".")
        return resolved

    return build


def trace(n: int, output: int = 1, prompt: int = 8) -> Trace:
    return Trace.from_columns(
        {
            "request_id": list(range(n)),
            "arrival_s": [0.0] * n,
            "num_prompt_tokens": [prompt] * n,
            "num_output_tokens": [output] * n,
        }
    )


def finish_times(res: api.RunResult) -> list[float]:
    return res.requests.column("finish_s").to_pylist()


@pytest.mark.parametrize("pp", [2, 4])
def test_full_pipeline_runs_pp_times_the_single_pass_rate(pipelined, pp: int) -> None:
    # Eight independent batches, no transfers: the first returns after pp·τ, then one
    # every τ: the rate is 1/τ = pp × the rate of an unpipelined pass (pp·τ).
    res = api.run_resolved(pipelined(pp, 0.5, 0.0), trace(8))
    assert finish_times(res) == [(pp + j) * 0.5 for j in range(8)]
    ttft = res.requests.column("ttft_s").to_pylist()
    assert ttft[0] == pp * 0.5  # a lone batch's latency = pp × stage time


def test_transfers_bound_rate_by_queue_depth(pipelined) -> None:
    # pp = 2, τ = 0.5, δ = 0.25: a batch takes L = 2τ + δ = 1.25 s and only pp = 2 are in
    # flight, so two batches return per 1.25 s (rate pp/L = 1.6/s < 1/τ = 2/s):
    #   b1 s0 [0, .5] s1 [.75, 1.25]   b2 s0 [.5, 1] s1 [1.25, 1.75]
    #   b3 scheduled when b1 returns (1.25): s0 [1.25, 1.75] s1 [2.0, 2.5]; b4 at 1.75 …
    res = api.run_resolved(pipelined(2, 0.5, 0.25), trace(6))
    assert finish_times(res) == [1.25, 1.75, 2.5, 3.0, 3.75, 4.25]


def test_lone_decoding_request_sees_a_bubble_every_token(pipelined) -> None:
    # One request: nothing else to schedule while its batch is in flight, so every
    # token waits a full pass L = pp·τ + (pp−1)·δ (the other stages idle: bubbles).
    res = api.run_resolved(pipelined(4, 0.5, 0.125), trace(1, output=5))
    latency = 4 * 0.5 + 3 * 0.125
    assert res.requests.column("first_token_s").to_pylist() == [latency]
    assert finish_times(res) == [5 * latency]
    assert res.summary["latency_s"]["itl"]["mean"] == pytest.approx(latency)


def test_one_batch_of_decodes_cannot_fill_the_pipeline(pipelined) -> None:
    # vLLM V1 puts every runnable request into the batch it schedules; in-flight ones are
    # skipped. Two requests admitted together decode in one batch per full pass: PP
    # gives no throughput without independent batches.
    res = api.run_resolved(pipelined(2, 0.5, 0.0, max_num_batched_tokens=64), trace(2, 3))
    assert finish_times(res) == [3.0, 3.0]


def test_same_seed_same_output(pipelined) -> None:
    rs = pipelined(2, 0.5, 0.1)
    a = api.run_resolved(rs, trace(5, 3)).requests
    b = api.run_resolved(rs, trace(5, 3)).requests
    assert a.equals(b)


def test_pipelined_replica_lost_mid_batch_requeues_its_requests() -> None:
    # Two TP4×PP2 replicas (roofline); replica 0 fails at 20 s with batches in flight:
    # its requests are requeued onto replica 1 and every request still completes.
    from pathlib import Path

    from infsim.scenario.load import load_scenario

    repo = Path(__file__).resolve().parents[2]
    raw = load_scenario(repo / "scenarios" / "llama70b-tp4-pp2.yaml").model_dump(
        mode="json", exclude_none=True
    )
    raw["deployment"]["replicas"] = 2
    raw["workload"]["synthetic"]["num_requests"] = 200
    raw["failures"] = {
        "policy": "requeue",
        "max_retries": 3,
        "events": [{"at_s": 20, "pool": "default", "replica": 0, "kind": "failure"}],
    }
    summary = api.run(validate_scenario(raw, "pp-fail"), repo / "scenarios").summary
    assert summary["requests"]["completed"] == 200
    assert summary["failures"]["num_failures"] == 1
    assert summary["failures"]["requests_retried"] > 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pp=st.integers(2, 4),
    rows=st.lists(
        st.tuples(st.floats(0, 5), st.integers(1, 60), st.integers(1, 12)), min_size=1, max_size=25
    ),
    blocks=st.integers(8, 40),
)
def test_every_request_finishes_once_under_pp_with_preemption(pipelined, pp, rows, blocks):
    # Small KV (block_size 16, 8-40 blocks) forces preemption while batches are in flight;
    # in-flight requests are never victims. Every request still finishes exactly once,
    # after its arrival plus one full pipeline pass.
    rows = sorted(rows)
    rs = pipelined(pp, 0.5, 0.125, max_num_batched_tokens=32, num_gpu_blocks_override=blocks)
    t = Trace.from_columns(
        {
            "request_id": list(range(len(rows))),
            "arrival_s": [a for a, _, _ in rows],
            "num_prompt_tokens": [p for _, p, _ in rows],
            "num_output_tokens": [o for _, _, o in rows],
        }
    )
    res = api.run_resolved(rs, t)
    table = res.requests.to_pylist()
    assert len(table) == len(rows)
    one_pass = pp * 0.5 + (pp - 1) * 0.125
    for r in table:
        if r["status"] == "rejected":
            continue
        assert r["status"] == "finished"
        assert r["first_token_s"] >= r["arrival_s"] + one_pass - 1e-9
        assert r["finish_s"] >= r["first_token_s"]


def test_preemption_with_batches_in_flight(pipelined) -> None:
    # 9 usable blocks of 16 tokens for twelve 50+12-token requests: the scheduler must
    # preempt while the other pipeline slot holds a batch; all still complete.
    rs = pipelined(2, 0.5, 0.125, max_num_batched_tokens=32, num_gpu_blocks_override=10)
    t = Trace.from_columns(
        {
            "request_id": list(range(12)),
            "arrival_s": [0.1 * i for i in range(12)],
            "num_prompt_tokens": [50] * 12,
            "num_output_tokens": [12] * 12,
        }
    )
    summary = api.run_resolved(rs, t).summary
    assert summary["requests"]["completed"] == 12
    assert summary["requests"]["preemptions"] > 0
