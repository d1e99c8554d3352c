"""Disaggregated serving (xPyD) with a constant step time of 0.5 s and an explicit link:
exact hand-off timings, decode admission gated by blocks, transfer queueing, conditional
local prefill, block and request conservation, determinism, validation.

Llama-3.1-8B in bf16 holds 131,072 KV bytes per token, so a 100-token prompt moves
13,107,200 bytes: at 6,553,600 bytes/s and 0.25 s latency the transfer takes 2.25 s.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from infsim import api
from infsim.cli import main
from infsim.errors import InputError
from infsim.scenario.load import load_scenario, validate_scenario
from infsim.sim import engine
from infsim.sim.disagg import Disaggregation
from infsim.workload.trace import Trace

# Engine semantics without an API server in front (its own tests set the frontend section).
NO_FRONTEND = {"request_s": 0.0, "request_per_prompt_token_s": 0.0, "output_per_step_s": 0.0,
               "output_per_token_s": 0.0}  # fmt: skip

KV_BYTES_PER_TOKEN = 131072
EXAMPLE = Path(__file__).parents[2] / "scenarios" / "disaggregated-1p1d.yaml"
LINK = {"bandwidth_bytes_per_s": KV_BYTES_PER_TOKEN * 100 / 2, "latency_s": 0.25}


def trace(arrivals: list[float], prompts: list[int], outputs: list[int]) -> Trace:
    return Trace.from_columns(
        {
            "request_id": list(range(len(arrivals))),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": outputs,
        }
    )


def scenario(
    *, prefill: int = 1, decode: int = 1, mixed: int = 0, fast_forward: bool = True, **disagg: Any
):
    pools = [
        {"name": "prefill", "role": "prefill", "replicas": prefill},
        {"name": "decode", "role": "decode", "replicas": decode},
    ]
    if mixed:
        pools.append({"name": "mixed", "role": "mixed", "replicas": mixed})
    raw = {
        "name": "disagg-test",
        "seed": 0,
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
        "deployment": {"pools": pools, "disaggregation": {"link": LINK, **disagg}},
        "engine": {"async_scheduling": False, "max_num_seqs": 64, "max_num_batched_tokens": 2048},
        "frontend": dict(NO_FRONTEND),
        "simulation": {"fast_forward": fast_forward},
    }
    return validate_scenario(raw, "disagg-test")


def run(sc, tr: Trace, decode_blocks: int | None = None) -> api.RunResult:
    rs, _ = api.prepare(sc, ".")
    if decode_blocks is not None:  # a decode pool with tiny KV memory
        pools = tuple(
            replace(p, kv=replace(p.kv, num_blocks=n))
            if p.spec.role == "decode" and (n := decode_blocks + 1)  # + vLLM's null block
            else p
            for p in rs.pools
        )
        rs = replace(rs, pools=pools)
    return api.run_resolved(rs, tr)


def col(res: api.RunResult, name: str) -> list:
    return res.requests.column(name).to_pylist()


@pytest.mark.parametrize("fast_forward", [True, False])
def test_one_request_prefill_transfer_decode_exact(constant_step, fast_forward) -> None:
    # Prefill step 0 → 0.5 samples the first token; the idle decode replica reserves its
    # blocks at 0.5; the link is free: transfer 0.5 → 2.75 (TTFT). Decode steps
    # 2.75 → 3.25 → 3.75 emit tokens 2 and 3.
    constant_step(0.5)
    sc = scenario(fast_forward=fast_forward)
    res = run(sc, trace([0.0], [100], [3]))
    assert col(res, "prefill_mode") == ["remote"]
    assert col(res, "prefill_replica_id") == [0]
    assert col(res, "decode_replica_id") == [1] == col(res, "replica_id")
    assert col(res, "prefill_end_s") == [0.5]
    assert col(res, "transfer_start_s") == [0.5]
    assert col(res, "transfer_end_s") == [2.75]
    assert col(res, "transfer_s") == [2.25]
    assert col(res, "transfer_queue_s") == [0.0]
    assert col(res, "decode_wait_s") == [0.0]
    assert col(res, "kv_transfer_bytes") == [100 * KV_BYTES_PER_TOKEN]
    assert col(res, "ttft_s") == [2.75]
    assert col(res, "finish_s") == [3.75]
    assert col(res, "tpot_s") == [0.5]
    section = res.summary["disaggregation"]
    assert section["num_transferred"] == 1
    assert section["kv_bytes_transferred"] == 100 * KV_BYTES_PER_TOKEN
    # Both pools billed over the whole span: 2 GPUs × 3.75 s.
    by_pool = res.summary["cost"]["by_pool"]
    assert by_pool["prefill"]["gpu_hours"] == by_pool["decode"]["gpu_hours"] == 3.75 / 3600


@pytest.mark.parametrize("fast_forward", [True, False])
def test_decode_admission_waits_for_blocks(constant_step, fast_forward) -> None:
    # Decode KV: 8 blocks of 16; each request needs ceil(101 / 16) = 7 at reservation.
    # Both prompts prefill in step 0 → 0.5. Request 0 reserves at 0.5 and moves
    # 0.5 → 2.75, decodes to 3.75 and frees its blocks; only then request 1 reserves
    # (decode_wait 3.25), moves 3.75 → 6.0 and decodes to 7.0. Its prefill blocks stay
    # held until 6.0.
    constant_step(0.5)
    sc = scenario(fast_forward=fast_forward)
    res = run(sc, trace([0.0, 0.0], [100, 100], [3, 3]), decode_blocks=8)
    assert col(res, "prefill_end_s") == [0.5, 0.5]
    assert col(res, "decode_wait_s") == [0.0, 3.25]
    assert col(res, "transfer_start_s") == [0.5, 3.75]
    assert col(res, "ttft_s") == [2.75, 6.0]
    assert col(res, "finish_s") == [3.75, 7.0]
    timeline = res.disaggregation_timeline.to_pydict()
    assert max(timeline["num_awaiting_decode_blocks"]) == 1
    assert max(timeline["num_prefill_held"]) == 2


def test_transfers_queue_on_the_senders_link(constant_step) -> None:
    # Plenty of decode memory: both reserve at 0.5, but one stream per sender: request 1
    # waits 2.25 s for the link, then moves 2.75 → 5.0.
    constant_step(0.5)
    res = run(scenario(), trace([0.0, 0.0], [100, 100], [3, 3]))
    assert col(res, "transfer_queue_s") == [0.0, 2.25]
    assert col(res, "transfer_end_s") == [2.75, 5.0]
    assert res.summary["disaggregation"]["max_transfers_queued"] == 1
    # Two streams at half the bandwidth each: both move 0.5 → 0.5 + 0.25 + 4.0.
    res2 = run(scenario(num_streams=2), trace([0.0, 0.0], [100, 100], [3, 3]))
    assert col(res2, "transfer_queue_s") == [0.0, 0.0]
    assert col(res2, "transfer_end_s") == [4.75, 4.75]


def test_layer_pipelined_transfer_exposes_the_remainder(constant_step) -> None:
    # Full transfer 2.0 s, prefill span 0.5 s: 1.5 s + 0.25 s latency remain after it.
    constant_step(0.5)
    res = run(scenario(layer_pipelined=True), trace([0.0], [100], [3]))
    assert col(res, "transfer_s") == [1.75]
    assert col(res, "ttft_s") == [2.25]


def test_conditional_short_prompt_prefilled_on_the_decode_replica(constant_step) -> None:
    # 40 uncached tokens ≤ 64: the decode replica prefills it itself (TTFT one step,
    # no transfer); the 100-token prompt goes through the prefill pool.
    constant_step(0.5)
    sc = scenario(conditional={"max_local_prefill_tokens": 64})
    res = run(sc, trace([0.0, 0.0], [40, 100], [3, 3]))
    assert col(res, "prefill_mode") == ["local", "remote"]
    assert col(res, "replica_id") == [1, 1]
    assert col(res, "ttft_s")[0] == 0.5
    assert col(res, "kv_transfer_bytes") == [None, 100 * KV_BYTES_PER_TOKEN]
    section = res.summary["disaggregation"]
    assert (section["num_prefilled_locally"], section["num_transferred"]) == (1, 1)


def test_single_token_output_finishes_on_the_prefill_replica(constant_step) -> None:
    constant_step(0.5)
    res = run(scenario(), trace([0.0], [100], [1]))
    assert col(res, "status") == ["finished"]
    assert col(res, "ttft_s") == [0.5] == col(res, "e2e_s")
    assert col(res, "kv_transfer_bytes") == [None]


class _Capture(Disaggregation):
    made: list[Disaggregation] = []  # noqa: RUF012 (test capture)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _Capture.made.append(self)


def _random_trace(n: int, seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    return trace(
        np.cumsum(rng.exponential(0.2, n)).tolist(),
        rng.integers(20, 400, n).tolist(),
        rng.integers(1, 30, n).tolist(),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conservation_of_blocks_and_requests(constant_step, monkeypatch, seed) -> None:
    # 2P2D plus a mixed pool, tiny decode memory (preemptions, blocked admissions):
    # every request finishes exactly once, and every block on both sides is free again.
    constant_step(0.05)
    monkeypatch.setattr(engine, "Disaggregation", _Capture)
    _Capture.made.clear()
    sc = scenario(prefill=2, decode=2, mixed=1, conditional={"max_local_prefill_tokens": 30})
    n = 120
    res = run(sc, _random_trace(n, seed), decode_blocks=60)
    assert col(res, "status") == ["finished"] * n
    assert res.summary["requests"]["completed"] == n
    (disagg,) = _Capture.made
    for replica in disagg.by_id.values():
        sched = replica.scheduler
        assert sched.kv.num_free_blocks == sched.kv.num_total_blocks
        assert not sched.running
        assert not sched.has_work()
    for replica in disagg.decode:
        assert replica.scheduler.num_receiving == 0
        assert not replica.scheduler.remote
    assert disagg.num_held == disagg.num_queued == disagg.num_awaiting == 0
    modes = col(res, "prefill_mode")
    assert {"remote", "local", "mixed"} <= set(modes)


def test_same_seed_same_outputs(constant_step) -> None:
    constant_step(0.05)
    sc = scenario(prefill=2, decode=1, conditional={"max_local_prefill_tokens": 30})
    a = run(sc, _random_trace(80, 7), decode_blocks=60)
    b = run(sc, _random_trace(80, 7), decode_blocks=60)
    assert a.requests.equals(b.requests)
    assert a.disaggregation_timeline.equals(b.disaggregation_timeline)
    assert a.summary["disaggregation"] == b.summary["disaggregation"]


def test_fast_forward_matches_stepping(constant_step) -> None:
    constant_step(0.05)
    tr = _random_trace(80, 3)
    sc = scenario(prefill=1, decode=2)
    a = run(sc, tr, decode_blocks=60)
    b = run(scenario(prefill=1, decode=2, fast_forward=False), tr, 60)
    assert a.requests.equals(b.requests)


@pytest.mark.parametrize(
    ("pools", "disagg", "field"),
    [
        ([{"name": "p", "role": "prefill"}], {}, "deployment.disaggregation"),
        ([{"name": "m"}], {}, "deployment.disaggregation"),
        (None, {}, "deployment.disaggregation"),
        ([{"name": "d", "role": "decode"}, {"name": "m"}], None, "deployment.pools[0].role"),
    ],
)
def test_invalid_pools_name_the_field(pools, disagg, field) -> None:
    raw: dict[str, Any] = {
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
        "deployment": {},
    }
    if pools is not None:
        raw["deployment"]["pools"] = pools
    if disagg is not None:
        raw["deployment"]["disaggregation"] = disagg
    sc = validate_scenario(raw, "t")
    with pytest.raises(InputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        api.prepare(sc, ".")


def test_cli_exits_2_naming_the_field(tmp_path) -> None:
    # The example scenario without its decode pool: one paragraph, exit 2.
    example = EXAMPLE
    raw = yaml.safe_load(example.read_text())
    raw["deployment"]["pools"] = raw["deployment"]["pools"][:1]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "deployment.disaggregation: needs at least one pool of role" in result.output
    assert "missing ['decode']" in result.output
    assert result.output.count("\n") == 1


def test_example_scenario_outputs(tmp_path) -> None:
    # The shipped example runs (roofline) and writes the transfer timeline.
    example = EXAMPLE
    res = api.run(load_scenario(example), example.parent)
    res.write(tmp_path)
    timeline = pq.read_table(tmp_path / "disaggregation_timeline.parquet")
    assert timeline.num_rows > 1
    section = res.summary["disaggregation"]
    assert section["num_transferred"] == res.summary["requests"]["completed"] == 600
    assert set(section["pools"]) == {"prefill", "decode"}
    assert res.summary["cost"]["by_pool"]["prefill"]["share"] == 0.5
