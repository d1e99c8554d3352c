"""Fleet scenarios with a constant step time (0.5 s): scale-up at t + cold start exactly,
draining, scale-to-zero, failures (requeue / fail), billing, determinism, conservation.

Cold starts are made exact: provisioning 2 s, weight load at a bandwidth equal to the
replica's weight bytes (1 s), engine start 1.5 s + graph capture 0.5 s: 5 s in all.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infsim import api
from infsim.scenario.load import validate_scenario
from infsim.workload.trace import Trace

# Engine semantics without an API server in front (its own tests set the frontend section).
NO_FRONTEND = {"request_s": 0.0, "request_per_prompt_token_s": 0.0, "output_per_step_s": 0.0,
               "output_per_token_s": 0.0}  # fmt: skip

COLD_S = 5.0


def trace(arrivals: list[float], prompts: list[int], outputs: list[int]) -> Trace:
    return Trace.from_columns(
        {
            "request_id": list(range(len(arrivals))),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": outputs,
        }
    )


def weight_bytes() -> float:
    rs, _ = api.prepare(scenario(), ".")
    return rs.kv.weight_bytes_per_gpu


def scenario(*, pools=None, autoscaling=None, failures=None, router="round_robin", **kw):
    raw: dict[str, Any] = {
        "name": "fleet-test",
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
        "router": {"kind": router},
        "engine": {"max_num_seqs": 64, "max_num_batched_tokens": 2048},
        "frontend": dict(NO_FRONTEND),
        **kw,
    }
    if pools is not None:
        raw["deployment"] = {"pools": pools}
    if autoscaling is not None:
        raw["autoscaling"] = autoscaling
    if failures is not None:
        raw["failures"] = failures
    return validate_scenario(raw, "fleet-test")


def pool(name="p", replicas=1, lo=None, hi=None, **kw) -> dict[str, Any]:
    cold = {
        "provisioning": {"kind": "fixed", "value_s": 2.0},
        "weight_load_bytes_per_s": weight_bytes(),
        "engine_start_s": 1.5,
        "graph_capture_s": 0.5,
    }
    return {
        "name": name,
        "replicas": replicas,
        "min_replicas": lo,
        "max_replicas": hi,
        "cold_start": cold,
        "pricing": {"kind": "on_demand", "usd_per_gpu_hour": 3.6},
        **kw,
    }


FAST_LOOP = {
    "signal": "concurrency",
    "target_per_replica": 1,
    "interval_s": 1.0,
    "window_s": 1.0,
    "tolerance": 0.0,
    "scale_down_stabilization_s": 100.0,
}


def run(sc, tr: Trace) -> api.RunResult:
    rs, _ = api.prepare(sc, ".")
    return api.run_resolved(rs, tr)


def col(res: api.RunResult, name: str) -> list:
    return res.requests.column(name).to_pylist()


@pytest.mark.parametrize("fast_forward", [True, False])
def test_scale_up_serves_at_decision_plus_cold_start(constant_step, fast_forward) -> None:
    # 4 requests of 40 tokens at t=0 on one replica: the tick at t=1 sees concurrency 4,
    # target 1, max 2 → one more replica, serving at 1 + 5 = 6. A request at 5.75 still
    # goes to replica 0; one at 6.25 goes to the new, idle replica 1.
    constant_step(0.5)
    sc = scenario(
        pools=[pool(replicas=1, lo=1, hi=2)],
        autoscaling=FAST_LOOP,
        router="least_outstanding_requests",
        simulation={"fast_forward": fast_forward},
    )
    res = run(sc, trace([0, 0, 0, 0, 5.75, 6.25], [8] * 6, [40] * 4 + [2, 2]))
    assert col(res, "replica_id") == [0, 0, 0, 0, 0, 1]
    assert col(res, "first_scheduled_s")[5] == 6.25
    fleet = res.summary["fleet"]["pools"]["p"]
    assert fleet["scale_events"][0] == {"time_s": 1.0, "from": 1, "to": 2}
    assert fleet["cold_starts"]["count"] == 1
    assert fleet["cold_starts"]["total_s"]["mean"] == COLD_S
    tl = res.fleet_timeline.to_pylist()
    first_serving_2 = min(r["time_s"] for r in tl if r["num_serving"] == 2)
    assert first_serving_2 == 1.0 + COLD_S
    phases = [(r["time_s"], r["num_provisioning"], r["num_loading"], r["num_starting"])
              for r in tl if r["time_s"] in (1.0, 3.0, 4.0)]  # fmt: skip
    assert (1.0, 1, 0, 0) in phases
    assert (3.0, 0, 1, 0) in phases
    assert (4.0, 0, 0, 1) in phases


def test_draining_replica_finishes_its_requests_and_takes_no_new_ones(constant_step) -> None:
    # Two replicas, demand for one: at the tick t=1 replica 1 (fewest requests, newest)
    # drains; its request (20 tokens from t=0) ends at 10.0 and it is released then.
    # Requests after t=1 all go to replica 0.
    constant_step(0.5)
    loop = {**FAST_LOOP, "target_per_replica": 100, "scale_down_stabilization_s": 0.0}
    sc = scenario(pools=[pool(replicas=2, lo=1, hi=2)], autoscaling=loop)
    res = run(sc, trace([0, 0, 0.2, 1.5, 2.5], [8] * 5, [30, 20, 4, 2, 2]))
    assert col(res, "replica_id") == [0, 1, 0, 0, 0]
    assert col(res, "finish_s")[1] == 10.0
    fleet = res.summary["fleet"]["pools"]["p"]
    assert fleet["scale_events"] == [{"time_s": 1.0, "from": 2, "to": 1}]
    seconds = fleet["replica_seconds"]
    end = res.summary["simulation"]["simulated_s"]
    assert seconds["draining"] == 10.0 - 1.0
    assert seconds["serving"] == end + 1.0
    # Billing: replica 0 over [0, end], replica 1 over [0, 10] at $3.6/GPU-h.
    assert res.summary["cost"]["usd_total"] == pytest.approx((end + 10.0) / 3600 * 3.6, 1e-12)
    assert res.summary["cost"]["by_pool"]["p"]["gpu_hours"] == pytest.approx((end + 10) / 3600)


def test_scale_to_zero_queues_at_the_gateway_then_serves(constant_step) -> None:
    # No replica at t=0: the request arriving at 0.25 waits at the gateway and the
    # activator starts a replica at once (not at the tick t=1): serving at 5.25. The
    # kv_usage signal reads 0 until then; the queued request keeps the pool at 1.
    constant_step(0.5)
    loop = {**FAST_LOOP, "signal": "kv_usage", "target_per_replica": 0.5}
    sc = scenario(pools=[pool(replicas=0, lo=0, hi=1)], autoscaling=loop)
    res = run(sc, trace([0.25], [8], [1]))
    assert col(res, "first_scheduled_s") == [5.25]
    assert col(res, "first_token_s") == [5.75]
    assert col(res, "ttft_s") == [5.5]
    summary = res.summary
    assert summary["fleet"]["gateway"] == {"num_queued": 1, "max_queued": 1}
    # Billed from the scale-up at 0.25 to the end at 5.75.
    assert summary["cost"]["usd_total"] == pytest.approx(5.5 / 3600 * 3.6, 1e-12)
    assert summary["fleet"]["pools"]["p"]["scale_events"][0] == {"time_s": 0.25, "from": 0, "to": 1}


def test_fixed_default_pool_keeps_its_cost_and_adds_sections(constant_step) -> None:
    constant_step(0.5)
    sc = scenario(deployment={"replicas": 2})
    res = run(sc, trace([0, 0.1], [8, 8], [3, 3]))
    cost = res.summary["cost"]
    end = res.summary["simulation"]["simulated_s"]
    assert cost["gpu_hours"] == 2 * end / 3600.0
    assert cost["by_pool"]["default"]["usd_total"] == cost["usd_total"]
    pools = res.summary["fleet"]["pools"]
    assert list(pools) == ["default"]
    assert pools["default"]["replica_seconds"]["serving"] == 2 * end
    assert res.summary["failures"]["requests_failed"] == 0
    assert res.summary["requests"]["failed"] == 0


@pytest.mark.parametrize("fast_forward", [True, False])
@pytest.mark.parametrize("policy", ["requeue", "fail"])
def test_failure_requeues_or_fails_in_flight_requests(constant_step, policy, fast_forward) -> None:
    # Round robin: replica 0 gets requests 0 and 2, replica 1 gets 1 and 3. Replica 0
    # fails at t=1.25 (mid-step): 0 and 2 are retried on replica 1 (requeue) or failed.
    constant_step(0.5)
    failures = {"policy": policy, "events": [{"at_s": 1.25, "pool": "default", "replica": 0}]}
    sc = scenario(
        deployment={"replicas": 2}, failures=failures, simulation={"fast_forward": fast_forward}
    )
    res = run(sc, trace([0, 0, 0.1, 0.1], [8] * 4, [10] * 4))
    status = col(res, "status")
    f = res.summary["failures"]
    assert f["num_failures"] == 1
    if policy == "requeue":
        assert status == ["finished"] * 4
        assert col(res, "replica_id") == [1, 1, 1, 1]
        assert f["requests_retried"] == 2
        assert f["requests_failed"] == 0
        assert min(col(res, "first_token_s")[i] for i in (0, 2)) > 1.25
        assert f["latency_s"]["e2e_p99"]["retried"] > f["latency_s"]["e2e_p99"]["unaffected"]
    else:
        assert status == ["failed", "finished", "failed", "finished"]
        assert f["requests_retried"] == 0
        assert f["requests_failed"] == 2
        assert res.summary["requests"]["failed"] == 2
    assert f["events"][0]["num_requeued" if policy == "requeue" else "num_failed"] == 2
    # The replacement was requested at once (default cold start, far beyond the run).
    assert res.summary["fleet"]["pools"]["default"]["cold_starts"]["count"] == 1


def test_spot_preemption_drains_during_notice_then_loses_the_rest(constant_step) -> None:
    # Notice at t=1 with 2 s of notice: replica 0 takes nothing new; its short request
    # (ends 2.0) finishes, its long one is lost at 3.0 and retried on replica 1.
    constant_step(0.5)
    failures = {
        "spot_notice_s": 2.0,
        "events": [{"at_s": 1.0, "pool": "default", "replica": 0, "kind": "preemption"}],
    }
    sc = scenario(deployment={"replicas": 2}, failures=failures)
    res = run(sc, trace([0, 0, 0.1, 1.5], [8] * 4, [4, 3, 40, 2]))
    assert col(res, "status") == ["finished"] * 4
    assert col(res, "replica_id") == [0, 1, 1, 1]
    assert col(res, "finish_s")[0] == 2.0
    f = res.summary["failures"]
    assert f["num_preemption_notices"] == 1
    assert f["num_preemptions"] == 1
    assert f["requests_retried"] == 1
    kinds = [(e["time_s"], e["event"]) for e in f["events"]]
    assert kinds == [(1.0, "notice"), (3.0, "lost")]


def spot_scenario(seed: int, policy: str = "requeue"):
    return scenario(
        seed=seed,
        pools=[
            pool(
                replicas=3,
                lo=1,
                hi=4,
                pricing={
                    "kind": "spot",
                    "usd_per_gpu_hour": 1.0,
                    "spot_interruptions_per_hour": 900,
                },
            )
        ],
        autoscaling={**FAST_LOOP, "target_per_replica": 4},
        failures={"policy": policy, "replica_mtbf_s": 20.0, "spot_notice_s": 1.0, "max_retries": 2},
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("policy", ["requeue", "fail"])
def test_conservation_and_determinism_under_failures(constant_step, seed, policy) -> None:
    constant_step(0.5)
    arrivals = [0.3 * i for i in range(60)]
    tr = trace(arrivals, [8 + i % 5 for i in range(60)], [5 + (7 * i) % 23 for i in range(60)])
    a = run(spot_scenario(seed, policy), tr)
    b = run(spot_scenario(seed, policy), tr)
    assert a.requests.equals(b.requests)
    assert a.fleet_timeline.to_pandas().equals(b.fleet_timeline.to_pandas())  # NaN-aware
    strip = lambda s: {k: v for k, v in s.items() if k != "simulation"}  # noqa: E731
    assert strip(a.summary) == strip(b.summary)
    status = col(a, "status")
    assert set(status) <= {"finished", "failed", "rejected"}
    req = a.summary["requests"]
    assert req["completed"] + req["rejected"] + req["failed"] == req["total"] == 60
    f = a.summary["failures"]
    assert f["num_failures"] + f["num_preemptions"] >= 1
    assert req["failed"] == f["requests_failed"]


def test_cost_is_gpu_seconds_times_price(constant_step) -> None:
    constant_step(0.5)
    arrivals = [0.3 * i for i in range(60)]
    tr = trace(arrivals, [8] * 60, [5 + (7 * i) % 23 for i in range(60)])
    res = run(spot_scenario(0), tr)
    end = res.summary["simulation"]["simulated_s"]
    # Rebuild the bill from the fleet timeline: ∫ billed replicas dt × price.
    tl = res.fleet_timeline.to_pylist()
    area = 0.0
    for r0, r1 in itertools.pairwise(tl):
        area += (r1["time_s"] - r0["time_s"]) * r0["usd_per_hour"] / 3600.0
    assert res.summary["cost"]["usd_total"] == pytest.approx(area, rel=1e-9)
    assert res.fleet_timeline.column("time_s").to_pylist()[-1] == end


def test_heterogeneous_pools_route_by_capacity(constant_step) -> None:
    # H100 (27,768 KV blocks of Llama-3.1-8B) and L40S (12,369): least outstanding tokens
    # relative to KV capacity sends ~69% of simultaneous identical requests to the H100.
    constant_step(0.5)
    sc = scenario(
        pools=[
            pool(name="h100", replicas=1, pricing={"kind": "on_demand", "usd_per_gpu_hour": 4.0}),
            pool(
                name="l40s",
                replicas=1,
                gpu="l40s",
                pricing={"kind": "on_demand", "usd_per_gpu_hour": 2.0},
            ),
        ],
        router="least_outstanding_tokens",
    )
    res = run(sc, trace([0.0] * 26, [100] * 26, [10] * 26))
    per_replica = col(res, "replica_id")
    assert (per_replica.count(0), per_replica.count(1)) == (18, 8)
    by_pool = res.summary["cost"]["by_pool"]
    end = res.summary["simulation"]["simulated_s"]
    assert by_pool["h100"]["usd_total"] == pytest.approx(end / 3600 * 4.0, 1e-12)
    assert by_pool["l40s"]["usd_total"] == pytest.approx(end / 3600 * 2.0, 1e-12)
    pools = res.summary["fleet"]["pools"]
    assert pools["l40s"]["gpu"].lower() == "l40s"
    assert (
        pools["h100"]["kv_cache_blocks_per_replica"]
        > 2 * pools["l40s"]["kv_cache_blocks_per_replica"]
    )


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    mtbf_s=st.floats(2.0, 200.0),
    notice_s=st.sampled_from([0.0, 0.5, 3.0]),
    policy=st.sampled_from(["requeue", "fail"]),
    max_retries=st.integers(0, 3),
    fast_forward=st.booleans(),
)
def test_every_request_ends_finished_rejected_or_failed(
    constant_step, seed, mtbf_s, notice_s, policy, max_retries, fast_forward
) -> None:
    constant_step(0.5)
    sc = scenario(
        seed=seed,
        pools=[
            pool(
                replicas=2,
                lo=1,
                hi=3,
                pricing={
                    "kind": "spot",
                    "usd_per_gpu_hour": 1.0,
                    "spot_interruptions_per_hour": 600,
                },
            )
        ],
        autoscaling={**FAST_LOOP, "target_per_replica": 4},
        failures={
            "policy": policy,
            "replica_mtbf_s": mtbf_s,
            "spot_notice_s": notice_s,
            "max_retries": max_retries,
        },
        simulation={"fast_forward": fast_forward},
        engine={"max_num_seqs": 64, "max_num_batched_tokens": 2048, "max_model_len": 60},
    )
    n = 40
    outputs = [3 + (11 * i) % 29 for i in range(n)]
    outputs[7] = 100  # too long for max_model_len: rejected
    res = run(sc, trace([0.4 * i for i in range(n)], [8] * n, outputs))
    req = res.summary["requests"]
    assert set(col(res, "status")) <= {"finished", "failed", "rejected"}
    assert req["completed"] + req["rejected"] + req["failed"] == n
    assert req["rejected"] == 1
    f = res.summary["failures"]
    assert f["requests_failed"] == req["failed"]
    lost = sum(e["num_requeued"] + e["num_failed"] for e in f["events"])
    assert lost == f["num_retries"] + f["requests_failed"]


def test_spot_rate_applies_without_a_failures_section(constant_step) -> None:
    constant_step(0.5)
    spot = {"kind": "spot", "usd_per_gpu_hour": 1.0, "spot_interruptions_per_hour": 3600}
    sc = scenario(pools=[pool(replicas=2, pricing=spot)])
    res = run(sc, trace([0.5 * i for i in range(20)], [8] * 20, [10] * 20))
    f = res.summary["failures"]
    assert f["policy"] == "requeue"
    assert f["num_preemption_notices"] + f["num_preemptions"] >= 1
    assert res.summary["requests"]["completed"] == 20
