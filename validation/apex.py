"""APEX+'s measured vLLM 0.6.0 runs on 8×H100-SXM (../shared/data/validation/
apex_plus_h100x8_vllm060), predicted with infsim: signed % error of TTFT / TPOT / E2E means.

    python validation/apex.py [--shared ../shared/data]

Each run is one result file of APEX+ (one per data-parallel rank): Llama-3.1-70B in bf16 at
TP8, 2×TP4, 4×TP2, TP4 or TP2, vLLM 0.6.0 (V0 engine) behind its OpenAI HTTP server, Poisson
0.25 or 0.5 req/s. A multi-replica plan sent the trace round-robin to its replicas, so rank r
of a dp-replica plan is simulated as its own single-replica run fed requests r, r + dp, …
of the trace, at their trace arrival times.

Lengths: the client sent `max_tokens = GeneratedTokens` without ignore_eos, so each
request's real lengths are the trace's plus `per_request_length_diffs.csv`. That table lacks
the first request of each rank's share (every file logs share − 1 requests), but summary.csv's
trace sums include it and its engine sums count it, so it was served: its engine lengths are
the engine sums minus the logged requests'.

Measured means, as APEX+'s client read them from the server's Prometheus counters at the end
of each run. They are engine-side: vLLM 0.6.0's OpenAI server parses, templates and
tokenises in its front-end process and hands the request over ZMQ to the engine process
(`AsyncEngineRPCServer`), where `AsyncLLMEngine.add_request` stamps the arrival; the first
token is stamped when the engine processes the step's outputs. So the predictions run
without infsim's API server (`ENGINE_SIDE`: no request path, no egress), and with V0's async
output processing (on by the version rule). Means: TTFT = Σ TTFT / count; TPOT = Σ time per
output token (the inter-token times) / generation_tokens_total, i.e. Σᵢ(e2eᵢ − ttftᵢ) / Σᵢ
nᵢ, a token-weighted mean over *all* nᵢ output tokens (the first included). infsim's per-
request `tpot_s` is (e2e − ttft)/(n − 1) averaged over requests, which weighs short requests
more and divides by n − 1: neither matches, so the prediction uses the same Σ(e2e − ttft) /
Σ n on infsim's per-request table. E2E = latency_sum_s / requests served (the whole share;
the summary's e2e_mean_s_derived divides by the logged requests, one fewer).

Engine settings of vLLM 0.6.0's V0 defaults as launched: chunked prefill off, no prefix
caching, --gpu-memory-utilization 0.97, max_num_seqs 256, and (V0, chunked prefill off)
max_num_batched_tokens = max(max_model_len, 2048). max_model_len: 24272 at TP2 (the
4DP2TP script's --max-model-len: at TP2 the KV cache cannot hold the model's 131072 tokens,
which V0 refuses at start-up; the launch flags of the single-replica TP2 runs are not
published, and they need the same cap to start), else the model's 131072 (TP4/TP8 hold it).

Left out: Mistral-Large-2407 / Mixtral-8x22B runs (no catalog model), the two empty result
files, the runs that replayed per-rank trace files other than the staged trace's
round-robin share (the creation runs of 2DP4TP and 4DP2TP: other requests, ~800 of them; the
lmsys 0.25 req/s runs of 2DP4TP and 4DP2TP: the same lengths but other request ids and
another Poisson draw of arrivals), and summarization_05_4TP's E2E (server counters carried
over from an earlier run, README).

Not modelled: V0 without chunked prefill runs prefill-only steps (decodes wait while a
prompt is prefilled); infsim's chunked-prefill-off mode admits whole prompts into mixed
steps. The 4DP2TP runs' --disable-custom-all-reduce is not modelled either.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from infsim import api
from infsim.scenario.load import validate_scenario
from infsim.scenario.schema import Scenario
from infsim.workload.trace import Trace

REPO = Path(__file__).resolve().parents[1]
DATA = Path("validation") / "apex_plus_h100x8_vllm060"
TRACES = Path("traces") / "apex_plus_vllm_validation"
MODEL, GPU, CALIBRATION = "llama-3.1-70b", "h100-sxm", "h100-vllm-0.19"
PLANS = {"8TP": (8, 1), "2DP4TP": (4, 2), "4DP2TP": (2, 4), "4TP": (4, 1), "2TP": (2, 1)}
"""parallel plan → (tensor parallel, replicas)"""
MAX_MODEL_LEN = {2: 24272}  # else the model's maximum
ENGINE_SIDE = {"request_s": 0.0, "request_per_prompt_token_s": 0.0,
               "output_per_step_s": 0.0, "output_per_token_s": 0.0}  # fmt: skip
"""frontend costs of the predictions: none (the counters are engine-side, see above)"""
ENGINE = {
    "version": "0.6.0",
    "enable_chunked_prefill": False,
    "enable_prefix_caching": False,
    "gpu_memory_utilization": 0.97,
    "max_num_seqs": 256,
}
METRICS = ("ttft", "tpot", "e2e")
NO_E2E = {"llama_summarization_05_validation_4TP"}  # counters carried over (README)
TITLE = "APEX+ 8×H100 (vLLM 0.6.0, V0)"


def trace_path(shared: Path, family: str, workload: str, rate: float) -> Path:
    tag = "05" if rate == 0.5 else "025"
    base = shared / TRACES / f"{family}_{workload}_{tag}"
    if workload == "summarization":
        return Path(f"{base}_reconstructed_from_4DP2TP_splits.csv")
    return Path(f"{base}.csv")


def rank_requests(shared: Path, run: pd.Series, diffs: pd.DataFrame) -> pd.DataFrame | None:
    """The requests one result file's server got, in arrival order: `arrival_s`, the
    engine's `prompt` and `output` lengths, `logged` (in per_request_length_diffs.csv).
    None when the logged requests are not the round-robin share of the staged trace."""
    trace = pd.read_csv(trace_path(shared, run.model_family, run.workload, run.rate_rps))
    _, replicas = PLANS[run.parallel]
    rank = 0 if pd.isna(run.dp_rank) else int(run.dp_rank)
    share = trace.iloc[rank::replicas].reset_index(drop=True)
    logged = diffs[diffs["file"] == run.file].set_index("request_id")
    if not logged.index.isin(share["RequestID"]).all():
        return None
    diff = logged.reindex(share["RequestID"])
    out = pd.DataFrame({
        "request_id": share["RequestID"],
        "arrival_s": share["StartTimeOffset"].to_numpy() / 1e9,
        "prompt": share["ContextTokens"] + diff["prompt_diff"].fillna(0).to_numpy(),
        "output": share["GeneratedTokens"] + diff["output_len_diff"].fillna(0).to_numpy(),
        "logged": diff["prompt_diff"].notna().to_numpy(),
    })  # fmt: skip
    missing = ~out["logged"]
    if missing.sum() == 1:  # served but not logged: the rest of the engine's sums
        for col, total in (("prompt", run.engine_prompt_sum), ("output", run.engine_output_sum)):
            rest = total - out.loc[~missing, col].sum()
            out.loc[missing, col] = rest if rest >= 1 else out.loc[missing, col]
    return out.astype({"prompt": int, "output": int})


def simulate(requests: pd.DataFrame, tp: int, sections: dict | None = None) -> api.RunResult:
    """One replica at TP `tp` fed `requests`; `sections` replace whole scenario sections
    (e.g. `cost_model`, `frontend`)."""
    scenario, trace = scenario_and_trace(requests, tp, sections)
    resolved, _ = api.prepare(scenario, ".")
    return api.run_resolved(resolved, trace)  # V0's CUDA-graph policy from engine.version


def scenario_and_trace(
    requests: pd.DataFrame, tp: int, sections: dict | None = None
) -> tuple[Scenario, Trace]:
    """The scenario `simulate` runs (its workload a stand-in) and the trace it replays."""
    trace = Trace.from_columns(
        {"arrival_s": requests["arrival_s"].to_numpy(),
         "num_prompt_tokens": requests["prompt"].to_numpy(),
         "num_output_tokens": requests["output"].to_numpy()},
        source="apex+",
    )  # fmt: skip
    max_model_len = MAX_MODEL_LEN.get(tp)
    engine = dict(ENGINE, max_num_batched_tokens=max(max_model_len or 131072, 2048))
    if max_model_len:
        engine["max_model_len"] = max_model_len
    raw = {"model": MODEL, "hardware": {"gpu": GPU}, "calibration": CALIBRATION,
           "deployment": {"tensor_parallel": tp}, "engine": engine, "frontend": ENGINE_SIDE,
           "workload": {"synthetic": {"num_requests": 1, "arrival": {
               "kind": "poisson", "rate_per_s": 1}, "prompt_tokens": {
               "kind": "fixed", "value": 1}, "output_tokens": {
               "kind": "fixed", "value": 1}}}} | (sections or {})  # fmt: skip
    return validate_scenario(raw, "apex-plus"), trace


def predict(requests: pd.DataFrame, tp: int) -> dict[str, float]:
    """infsim's TTFT mean, TPOT (Σ(e2e − ttft) / Σ output tokens) and E2E mean (s) of one
    replica at TP `tp` fed `requests`."""
    req = simulate(requests, tp).requests.to_pandas()
    done = req[req["status"] == "finished"]
    if len(done) != len(req):
        raise RuntimeError(f"{len(req) - len(done)} of {len(req)} requests not finished")
    return {
        "ttft": float(done["ttft_s"].mean()),
        "tpot": float((done["e2e_s"] - done["ttft_s"]).sum() / done["num_output_tokens"].sum()),
        "e2e": float(done["e2e_s"].mean()),
    }


def apex_rows(shared: Path) -> pd.DataFrame:
    """One row per APEX+ result file: measured and predicted TTFT / TPOT / E2E means (s) and
    the signed error in % (`<metric>_err`); `skipped` says why a run has no prediction."""
    base = shared / DATA
    summary = pd.read_csv(base / "summary.csv")
    diffs = pd.read_csv(base / "per_request_length_diffs.csv")
    rows = []
    for run in summary.itertuples():
        tp, _ = PLANS[run.parallel]
        row = {"run": run.file, "workload": run.workload, "rate": run.rate_rps,
               "plan": run.parallel, "tp": tp, "dp_rank": run.dp_rank, "requests": 0,
               "skipped": ""}  # fmt: skip
        requests = None
        if run.model_family != "llama":
            row["skipped"] = "no catalog model (Mistral-Large-2407 / Mixtral-8x22B)"
        elif run.empty_file:
            row["skipped"] = "empty result file"
        else:
            requests = rank_requests(shared, run, diffs)
            if requests is None:
                row["skipped"] = "per-rank trace file not staged (other request ids and arrivals)"
        if requests is not None:
            started = time.perf_counter()
            predicted = predict(requests, tp)
            row["requests"] = len(requests)
            row["sim_s"] = time.perf_counter() - started
            measured = {"ttft": run.ttft_mean_s, "tpot": run.tpot_mean_s,
                        "e2e": run.latency_sum_s / len(requests)}  # fmt: skip
            if run.file in NO_E2E:
                measured["e2e"] = np.nan
            for m in METRICS:
                row[f"{m}_measured"] = measured[m]
                row[f"{m}_predicted"] = predicted[m]
                row[f"{m}_err"] = (predicted[m] / measured[m] - 1) * 100
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(measured: float, predicted: float, err: float, unit: float, fmt: str) -> str:
    if pd.isna(err):
        return "–"
    return f"{measured * unit:{fmt}} / {predicted * unit:{fmt}} ({err:+.1f})"


def medians(rows: pd.DataFrame) -> pd.DataFrame:
    """Median |error| (%) per metric: all predicted runs, then per TP."""
    done = rows[rows["skipped"] == ""]
    errs = done[[f"{m}_err" for m in METRICS]].abs()
    out = {"all": errs.median()}
    for tp, sub in errs.groupby(done["tp"]):
        out[f"TP{tp}"] = sub.median()
    return pd.DataFrame(out).T.rename(columns=lambda c: c.removesuffix("_err"))


def apex_lines(rows: pd.DataFrame | None, note: str = "") -> list[str]:
    """The report section: per-run table and median |error| per metric and per TP."""
    lines = ["", f"## {TITLE}", ""]
    if rows is None or rows.empty:
        return [*lines, note or "APEX+ data absent: section skipped."]
    done = rows[rows["skipped"] == ""]
    lines += [
        "APEX+'s vLLM 0.6.0 runs (github.com/microsoft/apex_plus), Llama-3.1-70B bf16 on "
        "8×H100-SXM, predicted with `h100-vllm-0.19` and vLLM 0.6.0's engine settings "
        "(chunked prefill off, no prefix caching, max_num_seqs 256, max_num_batched_tokens "
        "= max_model_len; `validation/apex.py` documents the choices). One row per replica: "
        "a multi-replica plan's rank r gets every dp-th request. Engine-reported lengths "
        "(no ignore_eos). Means from the server's counters; TPOT = Σ inter-token time / "
        "Σ output tokens on both sides. Cells: measured / predicted (signed error %).",
        "",
        "| run | TP | requests | TTFT mean ms | TPOT mean ms | E2E mean s |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in done.itertuples():
        d = r._asdict()
        cells = [_cell(d["ttft_measured"], d["ttft_predicted"], d["ttft_err"], 1e3, ".1f"),
                 _cell(d["tpot_measured"], d["tpot_predicted"], d["tpot_err"], 1e3, ".2f"),
                 _cell(d["e2e_measured"], d["e2e_predicted"], d["e2e_err"], 1, ".2f")]  # fmt: skip
        lines.append(f"| {r.run} | {r.tp} | {r.requests} | " + " | ".join(cells) + " |")
    med = medians(rows)
    lines += ["", "Median |error| (%):", "", "| runs | TTFT | TPOT | E2E |", "|---|---|---|---|"]
    for label, m in med.iterrows():
        n = len(done) if label == "all" else int((done["tp"] == int(label[2:])).sum())
        lines.append(f"| {label} ({n}) | " + " | ".join(f"{m[k]:.1f}" for k in METRICS) + " |")
    skipped = rows[rows["skipped"] != ""].groupby("skipped")["run"].count()
    lines += ["", "Not predicted: " + "; ".join(f"{n} × {why}" for why, n in skipped.items())
              + ". summarization_05_4TP's E2E is left out (counters carried over)."]  # fmt: skip
    return lines


def apex_section(shared: Path) -> list[str]:
    """The section for report.py, or a note when the shared data is absent."""
    if not (shared / DATA / "summary.csv").is_file():
        return apex_lines(None, f"APEX+ data absent ({shared / DATA}): section skipped.")
    return apex_lines(apex_rows(shared))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    started = time.perf_counter()
    print("\n".join(apex_section(args.shared)))  # noqa: T201
    print(f"\n({time.perf_counter() - started:.1f} s)")  # noqa: T201


if __name__ == "__main__":
    main()
