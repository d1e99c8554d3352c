"""A run's results in `vllm bench serve --save-result --save-detailed` JSON, so dashboards
and scripts that read vLLM's benchmark results read infsim's predictions beside them.

Keys and units are vLLM's (`vllm/benchmarks/serve.py`, `calculate_metrics` and the
result dict it saves): aggregates in milliseconds (`mean_ttft_ms`, `p99_tpot_ms`, …) and
per second (`request_throughput`, `output_throughput`), per-request arrays in seconds
(`ttfts`, `latencies`, `start_times`), token counts as integers. As in vLLM:

- the statistics are over completed requests; TPOT only over those with more than one
  output token ((latency − TTFT) / (output tokens − 1));
- `duration` runs from the first request sent to the last one ended;
- failed and rejected requests stay in the arrays with 0 output tokens, TTFT 0 and their
  reason in `errors` (vLLM writes the exception text there).

What infsim cannot give is left out, not invented: `itls` (ITLs are kept as a weighted
sample, not per request), `std_itl_ms`, `p99.9_itl_ms` (the summary keeps ITL mean and
p50–p99 only), `generated_texts`, `burstiness`. `date` is "simulated" (a prediction has
no wall-clock date, and the file stays byte-identical across reruns). The extra key
`infsim` names the scenario and says the file is a prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infsim.report.read import RunFiles
from infsim.textio import load_yaml

PERCENTILES = (50, 90, 95, 99, 99.9)
"""`--metric-percentiles 50,90,95,99,99.9` (vLLM's default is 99 alone)."""
ITL_STATS = {"mean": "mean", "median": "p50", "p90": "p90", "p95": "p95", "p99": "p99"}


def _label(p: float) -> str:
    """vLLM's key spelling: p99, p99.9."""
    return str(int(p)) if int(p) == p else str(p)


def _stats_ms(name: str, values_s: np.ndarray) -> dict[str, float | None]:
    """mean/median/std and percentiles in ms, as vLLM computes them (np.std: population);
    None for an empty sample (vLLM writes 0 there; None says there was nothing)."""
    if not values_s.size:
        keys = ["mean", "median", "std", *(f"p{_label(p)}" for p in PERCENTILES)]
        return {f"{k}_{name}_ms": None for k in keys}
    ms = values_s * 1000.0
    out = {
        f"mean_{name}_ms": float(np.mean(ms)),
        f"median_{name}_ms": float(np.median(ms)),
        f"std_{name}_ms": float(np.std(ms)),
    }
    for p in PERCENTILES:
        out[f"p{_label(p)}_{name}_ms"] = float(np.percentile(ms, p))
    return out


def vllm_bench_result(run: RunFiles) -> dict[str, Any]:
    """The `vllm bench serve` result dict of a verified run directory."""
    t = run.requests
    col = {name: t.column(name).to_numpy(zero_copy_only=False) for name in t.column_names}
    done = col["status"] == "finished"
    arrival, finish = col["arrival_s"], col["finish_s"]
    num_in, num_out = col["num_prompt_tokens"], col["num_output_tokens"]
    ended = np.isfinite(finish)
    start_s = float(arrival.min()) if arrival.size else 0.0
    duration_s = float(finish[ended].max() - start_s) if ended.any() else 0.0
    completed = int(done.sum())
    total_in, total_out = int(num_in[done].sum()), int(num_out[done].sum())
    tpot = col["tpot_s"][done]
    tpot = tpot[np.isfinite(tpot)]
    scenario = load_yaml(run.resolved_scenario, str(run.directory / "scenario.resolved.yaml"))
    workload = (scenario or {}).get("workload") or {}
    model = (run.summary.get("deployment") or {}).get("model", "")
    span_s = float(arrival.max() - start_s) if arrival.size > 1 else 0.0
    per_s = (lambda x: x / duration_s) if duration_s > 0 else (lambda x: None)
    result: dict[str, Any] = {
        "date": "simulated",
        "backend": "infsim",
        "model_id": model,
        "tokenizer_id": model,
        "num_prompts": int(t.num_rows),
        "request_rate": t.num_rows / span_s if span_s > 0 else "inf",
        "max_concurrency": workload.get("max_concurrency"),
        "duration": duration_s,
        "completed": completed,
        "failed": int(t.num_rows - completed),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": per_s(completed),
        "request_goodput": _goodput(run.summary, duration_s),
        "output_throughput": per_s(total_out),
        "total_token_throughput": per_s(total_in + total_out),
        **_stats_ms("ttft", col["ttft_s"][done]),
        **_stats_ms("tpot", tpot),
        **_itl_ms(run.summary),
        **_stats_ms("e2el", col["e2e_s"][done]),
        "input_lens": num_in.tolist(),
        "output_lens": np.where(done, num_out, 0).tolist(),
        "ttfts": np.where(done, col["ttft_s"], 0.0).tolist(),
        "latencies": np.where(done, col["e2e_s"], 0.0).tolist(),
        "start_times": (arrival - start_s).tolist(),
        "errors": [
            "" if ok else (reason or status)
            for ok, reason, status in zip(done, col["reject_reason"], col["status"], strict=True)
        ],
        "infsim": {
            "prediction": True,
            "scenario": (scenario or {}).get("name"),
            "not_included": ["itls", "std_itl_ms", "p99.9_itl_ms", "generated_texts"],
        },
    }
    return result


def _itl_ms(summary: dict[str, Any]) -> dict[str, float | None]:
    itl = (summary.get("latency_s") or {}).get("itl") or {}
    out = {}
    for key, stat in ITL_STATS.items():
        value = itl.get(stat)
        out[f"{key}_itl_ms"] = None if value is None else float(value) * 1000.0
    return out


def _goodput(summary: dict[str, Any], duration_s: float) -> float | None:
    """Requests per second meeting the SLO (vLLM's `--goodput`), when the run had one:
    attainment counts every request (rejected ones as misses), so met = attainment ×
    requests."""
    slo = summary.get("slo") or {}
    attainment = slo.get("attainment")
    total = (summary.get("requests") or {}).get("total")
    if attainment is None or not total or duration_s <= 0:
        return None
    return round(attainment * total) / duration_s
