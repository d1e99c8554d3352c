"""Disaggregation evidence (docs/disaggregation.md): one mixed pool of N replicas vs
xPyD with the same GPU count, Llama-3.1-8B on H100 SXM (roofline cost model), on
(a) long prompts at high load and (b) short chat at low load.

Run: python benchmarks/disagg_evidence.py [--calibration h100-vllm-0.19] [--quick]
Prints one markdown table per workload (the numbers quoted in the doc).
"""

from __future__ import annotations

import argparse
from typing import Any

from infsim import api
from infsim.scenario.load import validate_scenario

SEED = 1
HEADER = (
    "| req/s | layout | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | ITL p99 ms "
    "| transfer p50 ms | SLO met | goodput req/s | $/M out tok | busy P / D |"
)

WORKLOADS: dict[str, dict[str, Any]] = {
    # (a) DistServe/Splitwise regime: long prompts, high load.
    "long-prompt-high-load": {
        "gpus": 4,
        "num_requests": 1500,
        "rates": [6.0, 8.0, 10.0, 12.0],
        "prompt_tokens": {"kind": "uniform", "min": 4000, "max": 8000},
        "output_tokens": {"kind": "fixed", "value": 256},
        "slo": {"ttft_s": 2.0, "tpot_s": 0.012},
        "layouts": [("4 mixed", 0, 0, 4), ("3P1D", 3, 1, 0), ("2P2D", 2, 2, 0)],
    },
    # (b) short chat, low load.
    "short-chat-low-load": {
        "gpus": 2,
        "num_requests": 600,
        "rates": [1.0, 4.0],
        "prompt_tokens": {"kind": "fixed", "value": 200},
        "output_tokens": {"kind": "fixed", "value": 200},
        "slo": {"ttft_s": 0.05, "tpot_s": 0.01},
        "layouts": [("2 mixed", 0, 0, 2), ("1P1D", 1, 1, 0)],
    },
}


def scenario(w: dict, rate: float, prefill: int, decode: int, mixed: int, calibration: str):
    pools = []
    if prefill:
        pools.append({"name": "prefill", "role": "prefill", "replicas": prefill})
    if decode:
        pools.append({"name": "decode", "role": "decode", "replicas": decode})
    if mixed:
        pools.append({"name": "mixed", "role": "mixed", "replicas": mixed})
    deployment: dict[str, Any] = {"pools": pools}
    if prefill:
        deployment["disaggregation"] = {"link": "inter_node"}
    raw = {
        "name": "disagg-evidence",
        "seed": SEED,
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "workload": {
            "synthetic": {
                "num_requests": w["num_requests"],
                "arrival": {"kind": "poisson", "rate_per_s": rate},
                "prompt_tokens": w["prompt_tokens"],
                "output_tokens": w["output_tokens"],
            }
        },
        "deployment": deployment,
        "engine": {"max_num_seqs": 256, "max_num_batched_tokens": 8192},
        "router": {"kind": "least_outstanding_tokens"},
        "slo": w["slo"],
        "calibration": calibration,
    }
    return validate_scenario(raw, "disagg-evidence")


def row(label: str, rate: float, res: api.RunResult) -> str:
    s = res.summary
    lat = s["latency_s"]
    d = s.get("disaggregation")
    transfer = f"{d['transfer_s']['p50'] * 1e3:.1f}" if d and d["num_transferred"] else "–"
    util = ""
    if d:
        util = " / ".join(f"{p['busy_fraction']:.2f}" for p in d["pools"].values())
    return (
        f"| {rate:g} | {label} | {lat['ttft']['p50'] * 1e3:.0f} | {lat['ttft']['p99'] * 1e3:.0f} "
        f"| {lat['tpot']['p50'] * 1e3:.1f} | {lat['tpot']['p99'] * 1e3:.1f} "
        f"| {lat['itl']['p99'] * 1e3:.1f} | {transfer} "
        f"| {s['slo']['attainment'] * 100:.1f}% | {s['slo']['goodput_requests_per_s']:.2f} "
        f"| {s['cost']['usd_per_million_output_tokens']:.2f} | {util or '–'} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibration", default="roofline")
    ap.add_argument("--quick", action="store_true", help="first rate only")
    args = ap.parse_args()
    for name, w in WORKLOADS.items():
        slo = w["slo"]
        print(f"\n### {name}: {w['gpus']} GPUs, SLO TTFT ≤ {slo['ttft_s']} s, TPOT ≤ "
              f"{slo['tpot_s'] * 1e3:g} ms, calibration {args.calibration}\n")  # fmt: skip
        print(HEADER)
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for rate in w["rates"][:1] if args.quick else w["rates"]:
            for label, p, d, m in w["layouts"]:
                res = api.run(scenario(w, rate, p, d, m, args.calibration), ".")
                print(row(label, rate, res), flush=True)


if __name__ == "__main__":
    main()
