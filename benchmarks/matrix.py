"""The simulator's speed across the regimes users run, each case in a fresh process.

    python benchmarks/matrix.py [--repeats 3] [--cases light,fleet-1m,...] [--json out.jsonl]
    python benchmarks/matrix.py --profile CASE [--sampling]   # top functions of one case

Cases (workloads fixed; traces from ../shared/data/traces, skipped when absent):

- light: the Azure 2023 conversation trace (19,366 requests, native rate ≈ 5.5 req/s),
  Llama-3.1-8B on 1× H100;
- saturated: the same trace at 2.5× its rate on 1× H100, near saturation (p99 TTFT 0.6 s,
  against 15 s at 3×);
- fleet-1m: 1,000,000 synthetic chat requests at 200 req/s over 16× H100 (round robin;
  p99 TTFT 0.2 s; at 400 req/s this mix overloads the fleet, p99 TTFT 180 s, a queueing
  benchmark);
- mooncake-prefix: the whole Mooncake conversation trace (12,031 requests, prefix hash
  ids) on 8× H100 with prefix caching;
- speculative: 20,000 synthetic requests at 8 req/s, Llama-3.1-8B + EAGLE (k = 3) on 1× H100;
- autoscaled: 50,000 synthetic requests in gamma bursts (CV 3) at 40 req/s over an
  autoscaled H100 pool (1–16 replicas, concurrency target 64);
- peer-1k, peer-10k: the side-by-side workload of issue 17: Llama-2-70B TP2 on A100-80GB,
  the Azure conversation trace at 0.3 req/s, first 1,000 / 10,000 requests,
  max_num_seqs 128, chunked prefill with a 512-token budget.

Reported per case: requests, whole-process wall time (start-up, trace load, the
simulation with its requests and timeline tables streamed to Parquet in a temporary
directory as `infsim run` does, and the summary; not the final publish), the
simulation's own wall time, simulated requests per wall-second of the simulation,
events per second, peak RSS, and bytes of RSS per request above the baseline (a
100-request run of the same process kind). Best and median of the repeats. Start-up:
`infsim --version` and the 1,000-request peer run, whole process.

The infsim package measured is byte-compiled first (`compileall`), as an installed wheel
is: where PYTHONDONTWRITEBYTECODE is set (as on the project's machines) every process
would otherwise compile its modules from source (~0.1 s each).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared/data/traces"
AZURE_CONV = SHARED / "azure_llm_2023/AzureLLMInferenceTrace_conv.csv"
MOONCAKE_CONV = SHARED / "mooncake_fast25/conversation_trace.jsonl"
AZURE_CONV_RATE_PER_S = 19_366 / 3_502.0  # its native mean rate (docs/performance.md)

CHAT = {
    "prompt_tokens": {"kind": "lognormal", "mean": 1000, "sigma": 0.8, "min": 16, "max": 8000},
    "output_tokens": {"kind": "lognormal", "mean": 200, "sigma": 0.7, "min": 4, "max": 1500},
}


def _azure(max_requests: int | None = None, rate_scale: float | None = None) -> dict:
    workload: dict = {"trace": {"path": str(AZURE_CONV), "format": "azure"}}
    if max_requests:
        workload["max_requests"] = max_requests
    if rate_scale:
        workload["rate_scale"] = rate_scale
    return workload


def _synthetic(num_requests: int, rate_per_s: float, arrival: dict | None = None) -> dict:
    return {
        "synthetic": {
            "num_requests": num_requests,
            "arrival": arrival or {"kind": "poisson", "rate_per_s": rate_per_s},
            **CHAT,
        }
    }


def _base(workload: dict, **sections) -> dict:
    raw = {
        "name": "matrix",
        "seed": 1,
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "workload": workload,
    }
    raw.update(sections)
    return raw


def _peer(num_requests: int) -> dict:
    return {
        "name": "matrix-peer",
        "seed": 1,
        "model": "llama-2-70b",
        "hardware": {"gpu": "a100-80gb"},
        "deployment": {"tensor_parallel": 2},
        "engine": {"max_num_seqs": 128, "max_num_batched_tokens": 512},
        "workload": _azure(num_requests, 0.3 / AZURE_CONV_RATE_PER_S),
    }


CASES = {
    "baseline": (lambda: _base(_synthetic(100, 8)), ()),
    "light": (lambda: _base(_azure()), (AZURE_CONV,)),
    "saturated": (lambda: _base(_azure(rate_scale=2.5)), (AZURE_CONV,)),
    "fleet-1m": (
        lambda: _base(_synthetic(1_000_000, 200), deployment={"replicas": 16}),
        (),
    ),
    "mooncake-prefix": (
        lambda: _base(
            {"trace": {"path": str(MOONCAKE_CONV), "format": "mooncake"}},
            deployment={"replicas": 8},
            router={"kind": "least_outstanding_requests"},
        ),
        (MOONCAKE_CONV,),
    ),
    "speculative": (
        lambda: _base(
            _synthetic(20_000, 8),
            engine={
                "speculative": {
                    "method": "eagle",
                    "num_speculative_tokens": 3,
                    "acceptance": {"kind": "constant", "rate": 0.7},
                }
            },
        ),
        (),
    ),
    "autoscaled": (
        lambda: _base(
            _synthetic(50_000, 40, arrival={"kind": "gamma", "rate_per_s": 40, "cv": 3.0}),
            deployment={
                "pools": [{"name": "h100", "replicas": 1, "min_replicas": 1, "max_replicas": 16}]
            },
            autoscaling={"signal": "concurrency", "target_per_replica": 64},
        ),
        (),
    ),
    "peer-1k": (lambda: _peer(1_000), (AZURE_CONV,)),
    "peer-10k": (lambda: _peer(10_000), (AZURE_CONV,)),
}


def child(case: str) -> dict:
    """Run one case in this (fresh) process and measure it, as `infsim run` runs it: the
    tables streamed to disk, and the heap frozen at exit (`infsim/cli.py`)."""
    from infsim import api
    from infsim.scenario.load import validate_scenario

    atexit.register(gc.freeze)

    scenario = validate_scenario(CASES[case][0](), f"matrix:{case}")
    resolved, trace = api.prepare(scenario, ".")
    with tempfile.TemporaryDirectory() as spool:  # tables streamed, as `infsim run` does
        result = api.run_resolved(resolved, trace, spool_dir=Path(spool))
    sim = result.summary["simulation"]
    return {
        "case": case,
        "requests": result.summary["requests"]["total"],
        "sim_wall_s": sim["wall_s"],
        "num_events": sim["num_events"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "p99_ttft_s": result.summary["latency_s"]["ttft"]["p99"],
    }


def _spawn(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, out


def measure(case: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        process_s, out = _spawn([sys.executable, __file__, "--child", case])
        runs.append(json.loads(out) | {"process_s": process_s})
    best = min(runs, key=lambda r: r["sim_wall_s"])
    walls = [r["sim_wall_s"] for r in runs]
    return best | {
        "median_sim_wall_s": statistics.median(walls),
        "median_process_s": statistics.median(r["process_s"] for r in runs),
        "best_process_s": min(r["process_s"] for r in runs),
        "requests_per_s": best["requests"] / best["sim_wall_s"],
        "events_per_s": best["num_events"] / best["sim_wall_s"],
        "repeats": repeats,
    }


def startup(repeats: int) -> float:
    """Whole-process seconds of `infsim --version` (best of the repeats)."""
    infsim = Path(sys.executable).with_name("infsim")
    command = [str(infsim)] if infsim.exists() else [sys.executable, "-m", "infsim"]
    return min(_spawn([*command, "--version"])[0] for _ in range(repeats))


def compile_package() -> None:
    """Byte-compile the infsim package the children import (see the module doc)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("infsim")
    for location in spec.submodule_search_locations or ():
        compileall.compile_dir(location, quiet=1)


def profile(case: str, sampling: bool) -> None:
    """Top functions of one case: cProfile (deterministic, inflates call-heavy code) or a
    sampling profile with pyinstrument when installed."""
    if sampling:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
        child(case)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    import cProfile
    import pstats

    with cProfile.Profile() as prof:
        child(case)
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default=",".join(c for c in CASES if c != "baseline"))
    ap.add_argument("--json", type=Path, help="Also append each result as a JSON line here.")
    ap.add_argument("--profile", metavar="CASE", choices=sorted(CASES))
    ap.add_argument("--sampling", action="store_true", help="With --profile: pyinstrument.")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if args.profile:
        profile(args.profile, args.sampling)
        return
    compile_package()
    import infsim
    from infsim.compiled import build_description

    print(f"infsim build: {build_description()} ({Path(infsim.__file__).parent})")
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        sys.exit(f"unknown cases {unknown}; known: {sorted(CASES)}")
    base = measure("baseline", args.repeats)
    print(f"baseline (100 requests): peak RSS {base['peak_rss_mib']:.0f} MiB, "
          f"process {base['best_process_s']:.2f} s; infsim --version "
          f"{startup(args.repeats):.2f} s; cores used: 1 of {os.cpu_count()}")  # fmt: skip
    heads = [
        ("case", 16), ("requests", 9), ("process s", 10), ("sim s", 8), ("(median)", 8),
        ("req/s", 8), ("events/s", 9), ("RSS MiB", 8), ("B/req", 6), ("p99 TTFT", 9),
    ]  # fmt: skip
    print(" ".join(f"{h:<{w}s}" if i == 0 else f"{h:>{w}s}" for i, (h, w) in enumerate(heads)))
    for name in names:
        missing = [str(p) for p in CASES[name][1] if not p.exists()]
        if missing:
            print(f"{name:16s} skipped: {', '.join(missing)} not found")
            continue
        r = measure(name, args.repeats)
        r["bytes_per_request"] = (r["peak_rss_mib"] - base["peak_rss_mib"]) * 2**20 / r["requests"]
        print(f"{name:16s} {r['requests']:9,d} {r['best_process_s']:10.2f} {r['sim_wall_s']:8.2f} "
              f"{r['median_sim_wall_s']:8.2f} {r['requests_per_s']:8,.0f} "
              f"{r['events_per_s']:9,.0f} {r['peak_rss_mib']:8.0f} "
              f"{r['bytes_per_request']:6.0f} {r['p99_ttft_s']:9.3f}", flush=True)  # fmt: skip
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
