"""Evidence tables for docs/parallelism.md and docs/routing.md (markdown on stdout).

    python benchmarks/parallelism_evidence.py [llama70b|moe|routing|all]

Each row is one `infsim run` of a scenario in scenarios/ with `--set` overrides; the
command is printed with the table so any row can be rerun alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from infsim import api
from infsim.scenario.load import load_scenario, validate_scenario

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
MOONCAKE = Path("/work/shared/data/traces/mooncake_fast25/conversation_trace.jsonl")


def run(name: str, overrides: dict) -> dict:
    raw = load_scenario(SCENARIOS / name).model_dump(mode="json", exclude_none=True)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    result = api.run(validate_scenario(raw, name), SCENARIOS)
    return result.summary | {"kv_tokens": result.resolved.kv.num_tokens}


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:,.0f}"


def llama70b() -> None:
    layouts = {
        "TP4 (4 GPUs)": {"deployment.pipeline_parallel": 1},
        "TP8": {"deployment.pipeline_parallel": 1, "deployment.tensor_parallel": 8},
        "TP4×PP2": {},
        "2 × TP4 (DP)": {"deployment.pipeline_parallel": 1, "deployment.replicas": 2},
    }
    print(
        "| layout | rate req/s | GPUs | KV tokens/replica | TTFT p50 / p99 ms | "
        "TPOT p50 ms | E2E p50 s | output tok/s | per GPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in (0.5, 4, 8):
        for label, sets in layouts.items():
            s = run(
                "llama70b-tp4-pp2.yaml", {**sets, "workload.synthetic.arrival.rate_per_s": rate}
            )
            lat, tp = s["latency_s"], s["throughput"]
            print(
                f"| {label} | {rate} | {s['deployment']['num_gpus']} | {s['kv_tokens']:,} | "
                f"{ms(lat['ttft']['p50'])} / {ms(lat['ttft']['p99'])} | "
                f"{ms(lat['tpot']['p50'])} | {lat['e2e']['p50']:.1f} | "
                f"{tp['output_tokens_per_s']:,.0f} | {tp['output_tokens_per_s_per_gpu']:,.0f} |"
            )


def moe() -> None:
    base = {
        "model": "mixtral-8x7b",
        "deployment.pipeline_parallel": 1,
        "engine.max_model_len": 32768,
        "workload.synthetic.arrival.rate_per_s": 8,
    }
    print("| model, layout (H100, 8 req/s) | TTFT p50 / p99 ms | TPOT p50 ms | output tok/s |")
    print("|---|---|---|---|")
    for label, sets in {
        "TP4": {"deployment.tensor_parallel": 4},
        "TP4, EP4": {"deployment.tensor_parallel": 4, "deployment.expert_parallel": 4},
        "TP8": {"deployment.tensor_parallel": 8},
        "TP8, EP8": {"deployment.tensor_parallel": 8, "deployment.expert_parallel": 8},
        "TP8, EP8, 4 GPUs/node": {
            "deployment.tensor_parallel": 8,
            "deployment.expert_parallel": 8,
            "hardware.gpus_per_node": 4,
        },
        "TP8, 4 GPUs/node": {"deployment.tensor_parallel": 8, "hardware.gpus_per_node": 4},
    }.items():
        s = run("llama70b-tp4-pp2.yaml", {**base, **sets})
        lat = s["latency_s"]
        print(
            f"| Mixtral-8x7B {label} | {ms(lat['ttft']['p50'])} / {ms(lat['ttft']['p99'])} | "
            f"{ms(lat['tpot']['p50'])} | {s['throughput']['output_tokens_per_s']:,.0f} |"
        )

    qwen = {**base, "model": "qwen3-235b-a22b", "deployment.weight_precision": "fp8",
            "deployment.tensor_parallel": 8}  # fmt: skip
    for label, sets in {"TP8": {}, "TP8, EP8": {"deployment.expert_parallel": 8}}.items():
        s = run("llama70b-tp4-pp2.yaml", {**qwen, **sets})
        lat = s["latency_s"]
        print(
            f"| Qwen3-235B-A22B fp8 {label} | {ms(lat['ttft']['p50'])} / "
            f"{ms(lat['ttft']['p99'])} | {ms(lat['tpot']['p50'])} | "
            f"{s['throughput']['output_tokens_per_s']:,.0f} |"
        )


def ideal_hit_rate(path: Path, num_requests: int, block_tokens: int = 512) -> float:
    """Upper bound: prompt tokens whose 512-token block chain any earlier request had
    (one infinite cache; at least one token computed per request)."""
    import json

    seen: set = set()
    hit = total = 0
    with path.open() as f:
        for _, line in zip(range(num_requests), f, strict=False):
            row = json.loads(line)
            chain: tuple = ()
            matched, matching = 0, True
            for h in row["hash_ids"]:
                chain = (chain, h)
                matching = matching and chain in seen
                matched += matching
                seen.add(chain)
            hit += min(matched * block_tokens, row["input_length"] - 1)
            total += row["input_length"]
    return hit / total


def balance_guard() -> None:
    print("| prefix_aware balance_abs_threshold | hit rate | TTFT mean / p99 ms | "
          "TPOT p50 ms | E2E p50 s | requests per replica |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for threshold in (2, 4, 8, 16, 64):
        scenario = load_scenario(SCENARIOS / "prefix-aware-routing.yaml")
        raw = scenario.model_dump(mode="json", exclude_none=True)
        raw["router"]["balance_abs_threshold"] = threshold
        result = api.run(validate_scenario(raw, "guard"), SCENARIOS)
        s, lat = result.summary, result.summary["latency_s"]
        replica_ids = result.requests.column("replica_id").to_pylist()
        shares = [replica_ids.count(i) for i in range(4)]
        print(
            f"| {threshold} | {s['prefix_cache']['hit_rate']:.3f} | {ms(lat['ttft']['mean'])} / "
            f"{ms(lat['ttft']['p99'])} | {ms(lat['tpot']['p50'])} | {lat['e2e']['p50']:.2f} | "
            f"{shares} |"
        )


def routing() -> None:
    cases = [("synthetic sessions (scenarios/prefix-aware-routing.yaml)", {})]
    if MOONCAKE.exists():
        cases.append((
            "Mooncake conversation trace, first 2,000 requests",
            {"workload": {"trace": {"path": str(MOONCAKE), "format": "mooncake"},
                          "max_requests": 2000},
             "deployment.replicas": 8},
        ))  # fmt: skip
        bound = ideal_hit_rate(MOONCAKE, 2000)
        print(f"Mooncake first 2,000 requests: ideal hit rate (one infinite cache) {bound:.3f}")
    else:
        print(f"(Mooncake trace not found at {MOONCAKE}: skipped)\n")
    for label, sets in cases:
        print(f"\n{label}\n")
        print("| router | prefix hit rate | TTFT mean / p50 / p99 ms | E2E p50 s |")
        print("|---|---|---|---|")
        for kind in ("round_robin", "least_outstanding_requests", "power_of_two",
                     "prefix_aware"):  # fmt: skip
            router = {"router.kind": kind} if kind == "prefix_aware" else {"router": {"kind": kind}}
            s = run("prefix-aware-routing.yaml", {**sets, **router})
            t = s["latency_s"]["ttft"]
            print(
                f"| {kind} | {s['prefix_cache']['hit_rate']:.3f} | {ms(t['mean'])} / "
                f"{ms(t['p50'])} / {ms(t['p99'])} | {s['latency_s']['e2e']['p50']:.1f} |"
            )


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, fn in (("llama70b", llama70b), ("moe", moe), ("routing", routing),
                     ("guard", balance_guard)):  # fmt: skip
        if which in (name, "all"):
            fn()
            print()
