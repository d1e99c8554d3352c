"""Routers in whole simulations (roofline, deterministic seeds): what they are for.

- prefix-aware routing keeps a chat session's turns on the replica caching its history,
  so the fleet's prefix hit rate and TTFT beat round-robin on the same session workload;
- power-of-two choices beats uniform random placement on a skewed load (heavy-tailed
  output lengths near capacity): queues stay shorter, TTFT tails shrink.
"""

from __future__ import annotations

from pathlib import Path

from infsim import api
from infsim.scenario.load import load_scenario, validate_scenario

REPO = Path(__file__).resolve().parents[2]


def run_prefix_scenario(kind: str) -> dict:
    """scenarios/prefix-aware-routing.yaml with 60 sessions and the given router."""
    raw = load_scenario(REPO / "scenarios" / "prefix-aware-routing.yaml").model_dump(mode="json")
    if kind != "prefix_aware":  # else keep the scenario's thresholds
        raw["router"] = {"kind": kind}
    raw["workload"]["synthetic"]["sessions"]["num_sessions"] = 60
    return api.run(validate_scenario(raw, "prefix"), REPO / "scenarios").summary


def test_prefix_aware_raises_hit_rate_and_cuts_ttft_over_round_robin() -> None:
    aware = run_prefix_scenario("prefix_aware")
    rr = run_prefix_scenario("round_robin")
    assert aware["requests"]["completed"] == rr["requests"]["completed"]
    assert aware["prefix_cache"]["hit_rate"] > rr["prefix_cache"]["hit_rate"] + 0.15
    assert aware["latency_s"]["ttft"]["mean"] < 0.8 * rr["latency_s"]["ttft"]["mean"]
    again = run_prefix_scenario("prefix_aware")
    assert again["prefix_cache"] == aware["prefix_cache"]  # deterministic


def skewed_run(kind: str) -> dict:
    raw = {
        "name": "skewed",
        "seed": 3,
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "deployment": {"replicas": 8},
        "engine": {"max_num_seqs": 16, "enable_prefix_caching": False},
        "router": {"kind": kind},
        "workload": {
            "synthetic": {
                "num_requests": 3000,
                "arrival": {"kind": "poisson", "rate_per_s": 60},
                "prompt_tokens": {"kind": "lognormal", "median": 300, "sigma": 1.0, "max": 8000},
                "output_tokens": {"kind": "lognormal", "median": 150, "sigma": 1.2, "max": 4000},
            }
        },
    }
    return api.run(validate_scenario(raw, "skewed"), ".").summary


def test_power_of_two_beats_random_on_a_skewed_load() -> None:
    p2 = skewed_run("power_of_two")
    rnd = skewed_run("random")
    assert p2["latency_s"]["ttft"]["p99"] < 0.7 * rnd["latency_s"]["ttft"]["p99"]
    assert p2["latency_s"]["e2e"]["mean"] < rnd["latency_s"]["e2e"]["mean"]
