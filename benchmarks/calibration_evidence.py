"""Evidence for the calibrated cost model (issue #3), printed as markdown tables.

1. single-request TTFT (1,024-token prompt) and TPOT (128 outputs) for Llama-3.1-8B TP1 and
   Llama-3.1-70B TP4 on H100 and A100: roofline v0 vs the shipped calibrations;
2. the per-op split of a decode step and a prefill step (what dominates);
3. whole-iteration times measured by Splitwise (Llama-2-70B on DGX-A100/H100, TP2-8)
   vs both models' predictions.

    python benchmarks/calibration_evidence.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from infsim import api
from infsim.core.batch import batch_of as batch
from infsim.cost.factory import build_cost_model
from infsim.scenario.load import validate_scenario

CALIBRATION = {"H100-SXM": "h100-vllm-0.19", "A100-80GB": "a100-vllm-0.14"}


def cost_model(model: str, gpu: str, tp: int, calibration: str, mbt: int = 16384):
    raw = {
        "model": model, "hardware": {"gpu": gpu}, "calibration": calibration,
        "deployment": {"tensor_parallel": tp},
        "engine": {"max_num_batched_tokens": mbt, "max_num_seqs": 256},
        "workload": {"synthetic": {"num_requests": 1, "arrival": {"kind": "poisson",
                     "rate_per_s": 1}, "prompt_tokens": {"kind": "fixed", "value": 8},
                     "output_tokens": {"kind": "fixed", "value": 2}}},
    }  # fmt: skip
    resolved, _ = api.prepare(validate_scenario(raw, "evidence"), ".")
    return build_cost_model(resolved.replica())


def single_request() -> None:
    print("| model | GPU | TP | TTFT roofline (ms) | TTFT calibrated (ms) | TPOT roofline (ms) "
          "| TPOT calibrated (ms) |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for model, tp in (("llama-3.1-8b", 1), ("llama-3.1-70b", 4)):
        for gpu in ("H100-SXM", "A100-80GB"):
            cells = []
            for cal in ("roofline", CALIBRATION[gpu]):
                cm = cost_model(model, gpu, tp, cal)
                ttft = cm.step_time_s(batch([(1024, 0)]))
                tpot = float(np.mean(cm.decode_run_times_s(1, 1024, 127)))
                cells.append((ttft, tpot))
            (t_r, p_r), (t_c, p_c) = cells
            print(f"| {model} | {gpu} | {tp} | {t_r * 1e3:.1f} | {t_c * 1e3:.1f} | "
                  f"{p_r * 1e3:.2f} | {p_c * 1e3:.2f} |")  # fmt: skip


def breakdown() -> None:
    print("\n| step | model | total (ms) | dense layers | attention | LM head + sampler "
          "| overhead |\n|---|---|---|---|---|---|---|")  # fmt: skip
    cm = cost_model("llama-3.1-8b", "H100-SXM", 1, CALIBRATION["H100-SXM"])
    for name, b in (("decode, batch 1, KV 1k", batch([(1, 1023)])),
                    ("decode, batch 128, KV 2k", batch([(1, 2047)] * 128)),
                    ("prefill 4k tokens", batch([(4096, 0)]))):  # fmt: skip
        ops = cm.op_times_s(b)
        total = sum(ops.values())
        shares = " | ".join(f"{v * 1e3:.2f} ({v / total:.0%})" for v in ops.values())
        print(f"| {name} | Llama-3.1-8B H100 | {total * 1e3:.2f} | {shares} |")


def splitwise(shared: Path) -> None:
    path = shared / "profiles/splitwise_sim_perf_model/perf_model.csv"
    if not path.exists():
        print(f"\n(splitwise comparison skipped: {path} not found)")
        return
    data = pd.read_csv(path)
    data = data[(data["model"] == "llama2-70b") & data["hardware"].isin(["a100-80gb", "h100-80gb"])]
    keys = ["hardware", "tensor_parallel", "prompt_size", "batch_size", "token_size"]
    med = data.groupby(keys, as_index=False)[["prompt_time", "token_time"]].median()
    rows = []
    for r in med.itertuples():
        gpu = {"a100-80gb": "A100-80GB", "h100-80gb": "H100-SXM"}[r.hardware]
        for cal in ("roofline", CALIBRATION[gpu]):
            tokens = r.prompt_size * r.batch_size
            cm = cost_model("llama-2-70b", gpu, r.tensor_parallel, cal, mbt=max(tokens, 2048))
            prompt = cm.step_time_s(batch([(r.prompt_size, 0)] * r.batch_size))
            ctx = r.batch_size * (r.prompt_size + r.token_size // 2)
            token = cm.decode_run_times_s(r.batch_size, ctx, 1)[0]
            rows.append({"gpu": gpu, "tp": r.tensor_parallel, "model_kind": cal.split("-")[0]
                         if cal != "roofline" else "roofline",
                         "prompt_err": prompt * 1e3 / r.prompt_time - 1,
                         "token_err": token * 1e3 / r.token_time - 1})  # fmt: skip
    errs = pd.DataFrame(rows)
    errs["kind"] = np.where(errs["model_kind"] == "roofline", "roofline", "calibrated")
    print(
        "\nSplitwise Llama-2-70B whole-iteration times (median of repeats), signed error of "
        "the prediction, median [p10, p90] over prompt sizes × batch sizes:\n"
    )
    print("| GPU | TP | model | prefill error | decode-iteration error | points |\n"
          "|---|---|---|---|---|---|")  # fmt: skip
    for (gpu, tp, kind), g in errs.groupby(["gpu", "tp", "kind"]):

        def fmt(col: str, g=g) -> str:
            q = np.percentile(g[col], [50, 10, 90]) * 100
            return f"{q[0]:+.0f}% [{q[1]:+.0f}, {q[2]:+.0f}]"

        print(f"| {gpu} | {tp} | {kind} | {fmt('prompt_err')} | {fmt('token_err')} | {len(g)} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = ap.parse_args()
    single_request()
    breakdown()
    splitwise(args.shared)


if __name__ == "__main__":
    main()
