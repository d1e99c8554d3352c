"""Evidence tables for docs/speculative.md (markdown on stdout).

    python benchmarks/speculative_evidence.py [steps|tpot|tpot-short|methods|oracle|all]

Every row is one run of scenarios/speculative-eagle.yaml with overrides (the scenario
file's closed loop: `max_concurrency` requests in flight, prompt 1024, output 256), so any
row can be rerun alone with `infsim run scenarios/speculative-eagle.yaml --set ...`:

    steps    one decode vs one verify step priced by the cost model, per token
    tpot     TPOT vs batch size (in-flight requests) without speculation and with EAGLE
             k = 3 at α = 0.7, on the h100-vllm-0.19 calibration and on the roofline;
             tpot-short: the same with 128-token prompts
    methods  the proposers compared at the same acceptance: EAGLE head, Llama-3.2-1B draft
             model, n-gram (free), at batch 1 and 64
    oracle   mean accepted tokens per verify step vs (1 − α^(k+1)) / (1 − α)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from infsim import api
from infsim.scenario.load import load_scenario, validate_scenario
from infsim.speculative.acceptance import (
    ConstantAcceptance,
    accepted_distribution,
    constant_rate_mean,
)

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "speculative-eagle.yaml"
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def run(overrides: dict) -> dict:
    raw = load_scenario(SCENARIO).model_dump(mode="json", exclude_none=True)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return api.run(validate_scenario(raw, SCENARIO.name), SCENARIO.parent).summary


def closed_loop(batch: int) -> dict:
    """`batch` requests in flight, 3 × batch requests in all (at least 24)."""
    return {"workload.max_concurrency": batch,
            "workload.synthetic.num_requests": max(24, 3 * batch)}  # fmt: skip


def eagle(**more) -> dict:
    spec = {"method": "eagle", "num_speculative_tokens": 3,
            "acceptance": {"kind": "constant", "rate": 0.7}} | more  # fmt: skip
    return {"engine.speculative": spec}


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.2f}"


def tpot(prompt: int, batches: tuple[int, ...], disable: int) -> None:
    """Simulated TPOT p50 (closed loop, prompt `prompt`, output 256) on the calibration and
    on the roofline, without speculation, with EAGLE, and with EAGLE switched off above
    `disable` requests (disable_by_batch_size)."""
    print(f"\n**prompt {prompt}, output 256** (TPOT p50 ms; speed-up = without / with)\n")
    print("| in flight | without | EAGLE k=3 | speed-up | EAGLE, off above "
          f"{disable} | tokens/verify | draft share | roofline speed-up |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in batches:
        sets = closed_loop(b) | {"workload.synthetic.prompt_tokens.value": prompt,
                                 "engine.max_num_seqs": max(256, b)}  # fmt: skip
        base = run(sets | {"engine.speculative": None})
        spec = run(sets | eagle())
        off = run(sets | eagle(disable_by_batch_size=disable))
        roof = [run(sets | {"calibration": "roofline"} | x)["latency_s"]["tpot"]["p50"]
                for x in ({"engine.speculative": None}, eagle())]  # fmt: skip
        t0, t1 = base["latency_s"]["tpot"]["p50"], spec["latency_s"]["tpot"]["p50"]
        s = spec["speculative"]
        print(f"| {b} | {ms(t0)} | {ms(t1)} | {t0 / t1:.2f}× | "
              f"{ms(off['latency_s']['tpot']['p50'])} | "
              f"{s['mean_accepted_tokens_per_verify']:.2f} | {s['draft_time_share']:.0%} | "
              f"{roof[0] / roof[1]:.2f}× |")  # fmt: skip


def steps() -> None:
    """One decode step vs one verify step (k = 3) of b requests at a fixed context, priced
    by the scenario's cost model (h100-vllm-0.19): the mechanism behind the crossover."""
    from infsim.core.batch import Batch, batch_of
    from infsim.cost.draft import speculative_cost_model
    from infsim.cost.factory import build_cost_model

    rs, _ = api.prepare(load_scenario(SCENARIO), SCENARIO.parent)
    model = speculative_cost_model(rs.replica(), build_cost_model(rs.replica()))
    mean_tokens = constant_rate_mean(0.7, 3)
    print(f"\n(ms; per token = step / tokens per request: 1, or {mean_tokens:.3f} "
          "with EAGLE k = 3 at α = 0.7)\n")  # fmt: skip
    print("| context | batch | decode step | verify step | proposer | per token without | "
          "per token with | with / without |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for context in (256, 1150):
        for b in (1, 8, 32, 64, 128, 256, 512):
            decode = model.target.step_time_s(batch_of([(1, context)] * b))
            verify = Batch(draft_k=3)
            for req in batch_of([(1, context)] * b).requests:
                verify.add(req, 4)
            target = model.target.step_time_s(verify)
            draft = model.proposer.draft_time_s(verify)
            with_s = (target + draft) / mean_tokens
            print(f"| {context} | {b} | {ms(decode)} | {ms(target)} | {ms(draft)} | "
                  f"{ms(decode)} | {ms(with_s)} | {with_s / decode:.2f} |")  # fmt: skip


def methods() -> None:
    proposers = {
        "none": {"engine.speculative": None},
        "EAGLE head": eagle(),
        "draft model Llama-3.2-1B": eagle(method="draft_model", draft_model="llama-3.2-1b"),
        "n-gram": eagle(method="ngram"),
    }
    print("\n(h100-vllm-0.19, k = 3, α = 0.7 for every proposer; TPOT p50 ms)\n")
    print("| proposer | KV tokens | TPOT @1 | draft share @1 | TPOT @64 | draft share @64 |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, sets in proposers.items():
        cells = []
        for b in (1, 64):
            s = run(closed_loop(b) | sets)
            share = s.get("speculative", {}).get("draft_time_share")
            cells += [ms(s["latency_s"]["tpot"]["p50"]), "-" if share is None else f"{share:.0%}"]
        kv = s["deployment"]["kv_cache_tokens_per_replica"]
        print(f"| {label} | {kv:,} | " + " | ".join(cells) + " |")


def oracle() -> None:
    # Each row pools 5 runs with seeds of its own, so rows are independent samples (rows
    # sharing one seed would share one uniform stream and deviate together).
    print("\n(n-gram proposer on the roofline, 8 in flight, 200 requests × 256 tokens, "
          "5 seeds per row)\n")  # fmt: skip
    print("| α | k | theory | simulated | verifies | σ of the mean | deviation |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    row = 0
    for rate in (0.5, 0.7, 0.9):
        for k in (1, 3, 5):
            row += 1
            verifies = accepted = 0
            spec = {"method": "ngram", "num_speculative_tokens": k,
                    "acceptance": {"kind": "constant", "rate": rate}}  # fmt: skip
            for seed in range(10 * row, 10 * row + 5):
                sets = {
                    "seed": seed,
                    "calibration": "roofline",
                    "workload.synthetic.num_requests": 200,
                    "engine.speculative": spec,
                }
                s = run(sets)["speculative"]
                verifies += s["num_verifies"]
                accepted += s["num_accepted_tokens"]
            theory = constant_rate_mean(rate, k)
            law = accepted_distribution(ConstantAcceptance(rate).marginals(k))
            mean = sum((j + 1) * p for j, p in enumerate(law))
            var = sum((j + 1) ** 2 * p for j, p in enumerate(law)) - mean**2
            sigma = math.sqrt(var / verifies)
            got = (accepted + verifies) / verifies
            print(f"| {rate} | {k} | {theory:.4f} | {got:.4f} | {verifies:,} | "
                  f"{sigma:.4f} | {(got - theory) / sigma:+.2f}σ |")  # fmt: skip


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    tables = {
        "steps": steps,
        "tpot": lambda: tpot(1024, BATCHES, 384),
        "tpot-short": lambda: tpot(128, (*BATCHES, 512), 384),
        "methods": methods,
        "oracle": oracle,
    }
    for name, fn in tables.items():
        if which in (name, "all"):
            print(f"\n### {name}")
            fn()
