"""Simulator speed on a fixed workload: simulated requests per wall-second and peak memory.

Workload: the Azure LLM inference 2023 conversation trace (19,366 requests, ~1 h) replayed
against Llama-3.1-8B on one H100 SXM with vLLM defaults, and a 4-replica variant at 4× the
arrival rate. Also the scaling with trace length (first N requests). Each configuration
runs in a fresh process so peak RSS is its own.

    python benchmarks/speed.py [--trace PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

DEFAULT_TRACE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv"
)

CASES = {
    "1x-h100": [],
    "4x-h100-4x-rate": [
        "deployment.replicas=4",
        "workload.rate_scale=4",
        "router.kind=least_outstanding_requests",
    ],
}


def one(trace: Path, overrides: list[str], max_requests: int | None) -> dict:
    from infsim import api
    from infsim.scenario.load import apply_override, validate_scenario

    raw = {
        "name": "speed",
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "workload": {
            "trace": {"path": str(trace), "format": "azure"},
            "max_requests": max_requests,
        },
    }
    for o in overrides:
        apply_override(raw, o)
    scenario = validate_scenario(raw, "benchmark")
    resolved, workload = api.prepare(scenario, ".")
    result = api.run_resolved(resolved, workload)
    sim = result.summary["simulation"]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "requests": result.summary["requests"]["total"],
        "wall_s": sim["wall_s"],
        "requests_per_wall_s": result.summary["requests"]["total"] / sim["wall_s"],
        "simulated_s": sim["simulated_s"],
        "num_events": sim["num_events"],
        "peak_rss_mib": peak_mib,
        "p99_ttft_s": result.summary["latency_s"]["ttft"]["p99"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        case, n = args.child.split(":")
        print(json.dumps(one(args.trace, CASES[case], int(n) or None)))
        return
    if not args.trace.exists():
        sys.exit(f"benchmark trace not found: {args.trace} (pass --trace)")
    rows = []
    for case in CASES:
        for n in (2000, 5000, 10000, 0):
            best = None
            for _ in range(args.repeats):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--trace",
                        str(args.trace),
                        "--child",
                        f"{case}:{n}",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                r = json.loads(out)
                if best is None or r["wall_s"] < best["wall_s"]:
                    best = r
            rows.append((case, best))
            print(
                f"{case:18s} {best['requests']:6d} req  wall {best['wall_s']:6.2f} s  "
                f"{best['requests_per_wall_s']:9,.0f} req/s  events {best['num_events']:7d}  "
                f"peak RSS {best['peak_rss_mib']:6.0f} MiB  p99 TTFT {best['p99_ttft_s']:.3f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
