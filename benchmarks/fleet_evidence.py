"""Evidence for docs/fleet.md: autoscaler lag under a burst, warm idle capacity vs scale
to zero, spot preemptions, heterogeneous routing. Prints the tables of docs/fleet.md and
writes its figures to docs/figures/fleet-*.png.

    python benchmarks/fleet_evidence.py            # ~1 min on one core
    python benchmarks/fleet_evidence.py --trace    # (re)write traces/burst_step.parquet
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np

from infsim import api
from infsim.scenario.load import read_yaml_mapping, validate_scenario
from infsim.workload.trace import Trace

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "docs" / "figures"
BURST_TRACE = ROOT / "traces" / "burst_step.parquet"


def write_burst_trace() -> None:
    """Poisson arrivals at 3 req/s for 120 s, 30 req/s for 180 s, 3 req/s for 300 s;
    prompts lognormal (median 1500), outputs lognormal (median 250); seed 7."""
    rng = np.random.default_rng(7)
    arrivals = []
    t = 0.0
    for end_s, rate in ((120.0, 3.0), (300.0, 30.0), (600.0, 3.0)):
        while True:
            t += rng.exponential(1.0 / rate)
            if t >= end_s:
                t = end_s
                break
            arrivals.append(t)
    n = len(arrivals)
    prompts = np.clip(rng.lognormal(np.log(1500), 0.5, n).round(), 16, 8000).astype(int)
    outputs = np.clip(rng.lognormal(np.log(250), 0.5, n).round(), 4, 2000).astype(int)
    Trace.from_columns(
        {
            "request_id": list(range(n)),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts.tolist(),
            "num_output_tokens": outputs.tolist(),
        }
    ).to_parquet(BURST_TRACE)
    print(f"wrote {BURST_TRACE} ({n} requests)")


def load(name: str) -> dict:
    return read_yaml_mapping(ROOT / "scenarios" / name)


def run(raw: dict) -> api.RunResult:
    return api.run(validate_scenario(raw, raw["name"]), ROOT / "scenarios")


def window(res: api.RunResult, lo: float, hi: float) -> dict:
    t = res.requests.to_pandas()
    sel = t[(t.arrival_s >= lo) & (t.arrival_s < hi) & (t.status == "finished")]
    return {"n": len(sel), "ttft_p99": sel.ttft_s.quantile(0.99), "ttft_p50": sel.ttft_s.median()}


def burst() -> None:
    raw = load("autoscaling-burst.yaml")
    fixed = copy.deepcopy(raw)
    fixed.pop("autoscaling")
    peak = raw["deployment"]["pools"][0]["max_replicas"]
    fixed["deployment"]["pools"][0].update(replicas=peak, min_replicas=None, max_replicas=None)
    fixed["name"] = "pre-provisioned (6 fixed)"
    one = copy.deepcopy(fixed)
    one["deployment"]["pools"][0].update(replicas=1)
    one["name"] = "fixed-1"
    panic = copy.deepcopy(raw)
    panic["autoscaling"]["panic_window_s"] = 6.0
    panic["name"] = "autoscaled+panic"
    fast = copy.deepcopy(raw)
    fast["deployment"]["pools"][0]["cold_start"] = {
        "provisioning": {"kind": "fixed", "value_s": 2.0},
        "weight_source": "host_cache",
        "engine_start_s": 5.0,
        "graph_capture_s": 0.0,
    }
    fast["name"] = "autoscaled, warm-node cold start"
    results = {r["name"]: run(r) for r in (raw, panic, fast, fixed, one)}
    print(
        "\n| fleet | cold start s | TTFT p99 before burst | TTFT p99 burst 120-300 s | "
        "TTFT p99 after | SLO attainment | GPU-h | $ total | $/M output tok | $/SLO-met req |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        s = res.summary
        pool = next(iter(s["fleet"]["pools"].values()))
        cold = pool["cold_starts"]["total_s"]["mean"]
        a, b, c = window(res, 0, 120), window(res, 120, 300), window(res, 300, 1e9)
        print(
            f"| {name} | {'—' if cold is None else round(cold, 1)} | {a['ttft_p99']:.3f} | "
            f"{b['ttft_p99']:.2f} | {c['ttft_p99']:.3g} | {s['slo']['attainment']:.3f} | "
            f"{s['cost']['gpu_hours']:.3f} | {s['cost']['usd_total']:.2f} | "
            f"{s['cost']['usd_per_million_output_tokens']:.2f} | "
            f"{s['cost']['usd_per_slo_met_request'] * 1000:.3f} m$ |"
        )
    plot_burst(results)


def plot_burst(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for name in ("autoscaled", "autoscaled, warm-node cold start", "pre-provisioned (6 fixed)"):
        res = results[name]
        tl = res.fleet_timeline.to_pandas()
        live = tl.num_provisioning + tl.num_loading + tl.num_starting + tl.num_serving
        axes[0].step(tl.time_s, tl.num_serving, where="post", label=f"{name}: serving")
        if name == "autoscaled":
            axes[0].step(tl.time_s, live, where="post", ls=":", label=f"{name}: requested")
        axes[1].step(tl.time_s, tl.num_waiting + tl.num_gateway_queued, where="post", label=name)
        req = res.requests.to_pandas().sort_values("arrival_s")
        axes[2].plot(req.arrival_s, req.ttft_s, ".", ms=2, label=name)
    axes[0].set_ylabel("replicas")
    axes[1].set_ylabel("queued requests")
    axes[2].set_ylabel("TTFT (s)")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("simulated time (s); burst 120-300 s")
    for ax in axes:
        ax.axvspan(120, 300, color="0.9")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIG / "fleet-burst.png", dpi=110)
    print(f"wrote {FIG / 'fleet-burst.png'}")


def idle() -> None:
    """Sparse traffic (20 requests in 10 s every 5 min): warm idle replica vs scale to zero."""
    raw = load("autoscaling-burst.yaml")
    raw.pop("workload")
    rng = np.random.default_rng(11)
    arrivals = sorted(float(300 * k + rng.uniform(0, 10)) for k in range(6) for _ in range(20))
    n = len(arrivals)
    trace = Trace.from_columns(
        {
            "request_id": list(range(n)),
            "arrival_s": arrivals,
            "num_prompt_tokens": rng.integers(500, 2000, n).tolist(),
            "num_output_tokens": rng.integers(100, 400, n).tolist(),
        }
    )
    print("\n| fleet | GPU-h | $ total | $/request | TTFT p50 | TTFT p99 | SLO attainment |")
    print("|---|---|---|---|---|---|---|")
    for label, lo, stab in (("warm: min 1", 1, 60), ("scale to zero, 60 s", 0, 60)):
        r = copy.deepcopy(raw)
        r["name"] = label
        r["deployment"]["pools"][0].update(replicas=lo, min_replicas=lo, max_replicas=2)
        r["autoscaling"]["scale_down_stabilization_s"] = stab
        r["workload"] = {"synthetic": {"num_requests": 1, "arrival": {"kind": "poisson",
                         "rate_per_s": 1}, "prompt_tokens": {"kind": "fixed", "value": 1},
                         "output_tokens": {"kind": "fixed", "value": 1}}}  # fmt: skip
        rs, _ = api.prepare(validate_scenario(r, label), ROOT / "scenarios")
        s = api.run_resolved(rs, trace).summary
        c, ttft = s["cost"], s["latency_s"]["ttft"]
        print(
            f"| {label} | {c['gpu_hours']:.3f} | {c['usd_total']:.3f} | "
            f"{c['usd_per_request'] * 1000:.2f} m$ | {ttft['p50']:.3f} | {ttft['p99']:.1f} | "
            f"{s['slo']['attainment']:.3f} |"
        )


def spot() -> None:
    raw = load("spot-failures.yaml")
    calm = copy.deepcopy(raw)
    calm.pop("failures")
    for p in calm["deployment"]["pools"]:
        p["pricing"]["spot_interruptions_per_hour"] = 0.0
    calm["name"] = "spot, no interruptions"
    fail = copy.deepcopy(raw)
    fail["failures"]["policy"] = "fail"
    fail["name"] = "spot, policy fail"
    raw["name"] = "spot, policy requeue"
    od = copy.deepcopy(calm)
    for p in od["deployment"]["pools"]:
        p["pricing"] = {"kind": "on_demand"}
    od["name"] = "on-demand, no interruptions"
    print(
        "\n| fleet | preemptions | failures | retried | failed | TTFT p99 all / unaffected "
        "/ retried | E2E p99 all / retried | $ total | $/M output tok |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in (od, calm, raw, fail):
        res = run(r)
        s = res.summary
        if r is raw:
            plot_spot(res)
        f = s["failures"]
        lat = f["latency_s"]

        def fmt(x):
            return "—" if x is None else f"{x:.2f}"

        print(
            f"| {r['name']} | {f['num_preemptions']} | {f['num_failures']} | "
            f"{f['requests_retried']} | {f['requests_failed']} | "
            f"{fmt(lat['ttft_p99']['all'])} / {fmt(lat['ttft_p99']['unaffected'])} / "
            f"{fmt(lat['ttft_p99']['retried'])} | {fmt(lat['e2e_p99']['all'])} / "
            f"{fmt(lat['e2e_p99']['retried'])} | {s['cost']['usd_total']:.2f} | "
            f"{s['cost']['usd_per_million_output_tokens']:.3f} |"
        )


def plot_spot(res: api.RunResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = res.fleet_timeline.to_pandas()
    cold = tl.num_provisioning + tl.num_loading + tl.num_starting
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), sharex=True)
    axes[0].step(tl.time_s, tl.num_serving, where="post", label="serving")
    axes[0].step(tl.time_s, cold, where="post", label="cold starting")
    axes[0].step(tl.time_s, tl.num_draining, where="post", label="draining (notice)")
    axes[1].step(tl.time_s, tl.num_waiting + tl.num_gateway_queued, where="post")
    req = res.requests.to_pandas()
    axes[2].plot(req.arrival_s, req.ttft_s, ".", ms=2)
    for e in res.summary["failures"]["events"]:
        for ax in axes:
            ax.axvline(e["time_s"], color="red" if e["kind"] == "failure" else "orange",
                       lw=0.8, ls="--" if e["event"] == "notice" else "-")  # fmt: skip
    axes[0].set_ylabel("replicas")
    axes[0].legend(fontsize=7)
    axes[1].set_ylabel("queued requests")
    axes[2].set_ylabel("TTFT (s)")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("simulated time (s); red: failure, orange: preemption (dashed: notice)")
    fig.tight_layout()
    fig.savefig(FIG / "fleet-spot.png", dpi=110)
    print(f"wrote {FIG / 'fleet-spot.png'}")


def hetero() -> None:
    raw = load("heterogeneous-fleet.yaml")
    print("\n| router | requests per pool | TTFT p99 | E2E p99 | $ by pool |")
    print("|---|---|---|---|---|")
    for kind in ("round_robin", "least_outstanding_requests", "least_outstanding_tokens"):
        r = copy.deepcopy(raw)
        r["router"] = {"kind": kind}
        res = run(r)
        s = res.summary
        ids = res.requests.column("replica_id").to_numpy()
        pools = s["fleet"]["pools"]
        counts, start = [], 0
        for name, p in pools.items():
            n = p["replicas_initial"]
            counts.append(f"{name} {int(((ids >= start) & (ids < start + n)).sum())}")
            start += n
        by = ", ".join(f"{k} {v['usd_total']:.2f}" for k, v in s["cost"]["by_pool"].items())
        print(
            f"| {kind} | {', '.join(counts)} | {s['latency_s']['ttft']['p99']:.3f} | "
            f"{s['latency_s']['e2e']['p99']:.2f} | {by} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.trace or not BURST_TRACE.exists():
        write_burst_trace()
    burst()
    idle()
    spot()
    hetero()
