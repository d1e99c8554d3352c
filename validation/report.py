"""Regenerate docs/validation.md: predicted vs measured for the live vLLM (CPU) matrix and
the measured GPU runs of ../shared/data/validation.

    python validation/report.py [--shared ../shared/data] [--out docs/validation.md]

Live runs: every repeat of `validation/live/runs.csv`, its `vllm bench serve` result.json
materialised from the compact store (`validation/live_store.py`) into a temporary
directory, is replayed through `scenarios/vllm-cpu-tiny-llama.yaml` with the server's knobs
(parsed from the `server` column of runs.csv), and the prediction is compared with the mean
of the repeats; the spread of the repeats (max − min over mean) shows the live noise next
to it.
GPU runs: LLMServingSim's vLLM 0.19 runs (requests.jsonl) replayed from their workload
files with the engine settings in their meta.json.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from apex import apex_section  # validation/apex.py (this script's folder is on sys.path)
from live_store import materialise_all  # validation/live_store.py

from infsim import api
from infsim.calibration.noise import run_noise, speed_noise
from infsim.errors import InputError
from infsim.scenario.load import load_scenario, validate_scenario
from infsim.validation import validate
from infsim.workload.loaders import load_trace
from infsim.workload.trace import Trace

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "vllm-cpu-tiny-llama.yaml"
KEYS = ("ttft_p50", "ttft_p99", "tpot_p50", "tpot_p99", "e2e_p50", "e2e_p99")
OVERLOADED = {"overload", "service-c64"}
PEERS = [
    ("BLIS", "E2E p99 9.2 %, TTFT p99 29 %"),
    ("LLMServingSim 2.0", "TPOT 1.7 %, E2E 2.2 %, TTFT up to 13.6 %"),
    ("AISimulate", "TPOT 2.8–5.2 %, TTFT 13.5–15.7 %"),
    ("Vidur", "< 9 % (paper)"),
]


def server_overrides(server: str, kv_tokens: float | None) -> list[str]:
    """`--set` items for a live server described like 'max-num-seqs=64 no-prefix-caching'."""
    out = []
    for flag, path in (("max-num-seqs", "engine.max_num_seqs"),
                       ("max-num-batched-tokens", "engine.max_num_batched_tokens"),
                       ("num-gpu-blocks-override", "engine.num_gpu_blocks_override")):  # fmt: skip
        m = re.search(rf"(?<![\w-]){flag}=(\d+)", server)
        if m:
            out.append(f"{path}={m.group(1)}")
    if "no-prefix-caching" in server:
        out.append("engine.enable_prefix_caching=false")
    elif "prefix-caching" in server:
        out.append("engine.enable_prefix_caching=true")
    if kv_tokens and not any(o.startswith("engine.num_gpu_blocks_override") for o in out):
        out.append(f"engine.num_gpu_blocks_override={int(kv_tokens) // 128}")
    return out


FIT_RUNS = re.compile(r"conc-c\d+|kv-c1-in\d+")
"""Closed-loop runs at fixed lengths that calibrate a session: their TPOT p50 is the decode
step time at batch = concurrency (`infsim calibrate overhead`), and the concurrency-1 runs'
TTFT the front end (`infsim calibrate frontend`). They are in-sample: the accuracy targets
are judged on the other runs of the session."""


def _sh(*args: str) -> None:
    from infsim.cli import main as cli

    code = cli.main(list(args), standalone_mode=False)
    if code:
        raise SystemExit(f"infsim {' '.join(args)} failed (exit {code})")


def session_calibration(
    bench_root: Path, reps: pd.DataFrame, out: Path, noise: list[str] = ()
) -> Path:
    """Fit a calibration for one session (`bench_root`: the materialised
    `<run>/<rep>/result.json` files): the shipped op table, its step overhead refitted
    from the session's closed-loop runs (median TPOT = the decode step at that
    concurrency) and, where the server recorded it, the engine's prefill time of its
    concurrency-1 runs, its front end from the session's concurrency-1 TTFT. Returns the
    directory (under `out`). `noise`: the session's speed-noise override, so that the front
    end is fitted against the engine the predictions will use."""
    fit = reps[reps["run"].str.fullmatch(FIT_RUNS)]
    sets = [arg for item in noise for arg in ("--set", item)]
    benches = [str(bench_root / r.run / r.rep / "result.json") for r in fit.itertuples()]
    c1 = [b for b, r in zip(benches, fit.itertuples(), strict=True) if r.max_concurrency == 1]
    cal = out / "calibration"
    prefill = prefill_steps(fit, out / "prefill_steps.csv")
    _sh("calibrate", "overhead", *benches, *prefill, "--scenario", str(SCENARIO), *sets,
        "-o", str(cal))  # fmt: skip
    _sh("calibrate", "frontend", *c1, "--scenario", str(SCENARIO), *sets,
        "--set", f"calibration={cal}", "-o", str(cal))  # fmt: skip
    return cal


def prefill_steps(fit: pd.DataFrame, path: Path) -> list[str]:
    """The engine's own prefill step of the session's one-in-flight fit runs, as a measured
    steps CSV for `infsim calibrate overhead` (batch 1, query_len = kv_len = the prompt,
    step = the server's mean prefill time, first scheduled to first token, from its
    Prometheus histogram in runs.csv, averaged over the repeats of each prompt length).
    [] when the session did not record it."""
    c1 = fit[(fit["max_concurrency"] == 1) & fit["server_prefill_mean_ms"].notna()]
    if c1.empty:
        return []
    per_run = c1.groupby("mean_input_len")["server_prefill_mean_ms"].mean()  # over repeats
    prompt = per_run.index.round()
    steps = pd.DataFrame({"batch_size": 1, "query_len": prompt, "kv_len": prompt,
                          "step_time_s": per_run.to_numpy() / 1e3})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    steps.astype({"query_len": int, "kv_len": int}).to_csv(path, index=False)
    return [str(path)]


def session_noise(bench_root: Path, reps: pd.DataFrame) -> tuple[float, float] | None:
    """(cv, correlation_s) of the session's speed swings, from its one-in-flight fit runs
    (`infsim calibrate noise`); None when they are too short to tell (< 8 requests: the
    sessions before `long-cal`)."""
    c1 = reps[reps["run"].str.fullmatch(FIT_RUNS) & (reps["max_concurrency"] == 1)]
    runs = []
    for r in c1.itertuples():
        try:
            runs.append(run_noise(bench_root / r.run / r.rep / "result.json"))
        except InputError:
            continue
    return speed_noise(runs) if runs else None


def live_rows(live: Path, work: Path, with_noise: bool = False) -> pd.DataFrame:
    """One row per (session, run): mean over the session's repeats, predicted with the
    calibration fitted on that session's own closed-loop runs (and, `with_noise`, the
    speed noise estimated from its one-in-flight runs). The repeats' result.json files are
    materialised from the compact store under `work`."""
    runs = pd.read_csv(live / "runs.csv")
    bench_root = materialise_all(work / "live", [f"{r.run}/{r.rep}" for r in runs.itertuples()],
                                 live=live)  # fmt: skip
    rows = []
    for index, (session, in_session) in enumerate(runs.groupby("session", sort=False)):
        # The session's own speed noise, or none (not the shipped scenario's, which was
        # estimated on another session).
        noise = ["hardware.speed_noise=null"]
        cv = correlation_s = None
        estimate = session_noise(bench_root, in_session) if with_noise else None
        if estimate is not None:
            cv, correlation_s = estimate
            noise = [f"hardware.speed_noise={{cv: {cv}, correlation_s: {correlation_s}}}"]
        cal = session_calibration(bench_root, in_session, work / f"session-{index}", noise)
        for (run, server, kv), reps in in_session.groupby(
            ["run", "server", "kv_cache_tokens"], sort=False, dropna=False
        ):
            overrides = [*server_overrides(server, None if pd.isna(kv) else float(kv)),
                         f"calibration={cal}", *noise]  # fmt: skip
            scenario = load_scenario(SCENARIO, overrides)
            # Timed-trace runs: the replayed trace (hash ids over the engine's blocks) gives
            # the prefix identity that bench results do not record.
            trace_file = live / run / "trace.jsonl"
            prefix = None
            if trace_file.is_file():
                prefix = load_trace(trace_file, hash_block_size_tokens=scenario.engine.block_size)
            results = [validate(bench_root / run / rep / "result.json", scenario, SCENARIO.parent,
                                prefix_trace=prefix) for rep in reps["rep"]]  # fmt: skip
            row = {"session": session, "run": run, "what": reps["what"].iloc[0],
                   "reps": len(results), "overloaded": run in OVERLOADED,
                   "fit": bool(FIT_RUNS.fullmatch(run)), "noise_cv": cv,
                   "noise_correlation_s": correlation_s}  # fmt: skip
            for key in (*KEYS, "output_tokens_per_s"):
                measured = [r.metrics[key].measured for r in results if key in r.metrics]
                predicted = [r.metrics[key].predicted for r in results if key in r.metrics]
                if not measured or predicted[0] is None:
                    continue
                mean = float(np.mean(measured))
                row[f"{key}_err"] = (float(np.mean(predicted)) / mean - 1) * 100
                row[f"{key}_spread"] = (max(measured) - min(measured)) / mean * 100
            rows.append(row)
    return pd.DataFrame(rows)


SHAREGPT = "traces/llmservingsim_sharegpt_workloads/sharegpt-{}-300-sps10.tokens_hashed.jsonl"
GPU_RUNS = [  # (hardware dir, model dir, catalog model, catalog GPU, calibration, workload)
    ("RTX4090", "Llama-3.1-8B", "llama-3.1-8b", "rtx-4090", "rtx4090-vllm-0.19",
     SHAREGPT.format("llama-3.1-8b")),
    ("RTXPRO6000", "Llama-3.1-8B", "llama-3.1-8b", "rtx-pro-6000", "rtxpro6000-vllm-0.19",
     SHAREGPT.format("llama-3.1-8b")),
    # No per-op table of this model (the Llama-3.1-8B table's curves, scaled to its shapes)
    # and no workload file in ../shared/data: its requests.jsonl is replayed instead.
    ("RTXPRO6000", "Qwen3-32B", "qwen3-32b", "rtx-pro-6000", "rtxpro6000-vllm-0.19", None),
]  # fmt: skip


def _requests_trace(req: pd.DataFrame, source: Path) -> Trace:
    """The engine's view of a run: arrivals at queued_ts, with the measured lengths."""
    return Trace.from_columns(
        {"arrival_s": (req["queued_ts"] - req["queued_ts"].min()).to_numpy(),
         "num_prompt_tokens": req["input_toks"].to_numpy(),
         "num_output_tokens": req["output_toks"].to_numpy()},
        source=str(source),
    )  # fmt: skip


def gpu_cases(shared: Path) -> Iterator[tuple[str, str, dict, Trace, dict[str, pd.Series]]]:
    """LLMServingSim's measured vLLM 0.19 runs replayed with their engine settings: from the
    workload file the benchmark sent (as LLMServingSim's own comparison does), or from the
    run's requests.jsonl where that file is not in ../shared/data. Yields (label, cost
    model, raw scenario, trace, measured per-request TTFT / E2E / TPOT) per run and cost
    model (roofline and the GPU's table)."""
    base = shared / "validation" / "llmservingsim_bench_vllm"
    for hw, model_dir, model, gpu, cal, workload in GPU_RUNS:
        run = base / hw / model_dir / "vllm"
        if not run.is_dir():
            continue
        meta = json.loads((run / "meta.json").read_text())
        eng = meta["engine_kwargs"]
        req = pd.read_json(run / "requests.jsonl", lines=True).sort_values("queued_ts")
        measured = {
            "ttft": req["first_token_ts"] - req["queued_ts"],
            "e2e": req["last_token_ts"] - req["queued_ts"],
            "tpot": (req["last_token_ts"] - req["first_token_ts"]) / (req["output_toks"] - 1),
        }
        engine = {"max_num_seqs": eng["max_num_seqs"],
                  "max_num_batched_tokens": eng["max_num_batched_tokens"]}  # fmt: skip
        if eng.get("max_model_len"):
            engine["max_model_len"] = eng["max_model_len"]
        if (meta.get("kv_cache") or {}).get("num_gpu_blocks"):
            engine["num_gpu_blocks_override"] = meta["kv_cache"]["num_gpu_blocks"]
        if workload is not None and (shared / workload).is_file():
            trace = load_trace(shared / workload)
        else:
            trace = _requests_trace(req, run / "requests.jsonl")
        tp = eng.get("tensor_parallel_size") or 1
        label = f"{hw} {model_dir}" + (f" TP{tp}" if tp > 1 else "")
        for calibration in ("roofline", cal):
            raw = {"model": model, "hardware": {"gpu": gpu}, "calibration": calibration,
                   "deployment": {"tensor_parallel": tp}, "engine": engine,
                   "workload": {"synthetic": {"num_requests": 1, "arrival": {
                       "kind": "poisson", "rate_per_s": 1}, "prompt_tokens": {
                       "kind": "fixed", "value": 1}, "output_tokens": {
                       "kind": "fixed", "value": 1}}}}  # fmt: skip
            yield label, calibration, raw, trace, measured


def gpu_rows(shared: Path) -> pd.DataFrame:
    """`gpu_cases` predicted: signed % error of p50 and p99 per metric."""
    rows = []
    for label, calibration, raw, trace, measured in gpu_cases(shared):
        resolved, _ = api.prepare(validate_scenario(raw, "gpu-validation"), ".")
        lat = api.run_resolved(resolved, trace).summary["latency_s"]
        row = {"run": label, "cost model": calibration}
        for metric, values in measured.items():
            for stat, q in (("p50", 50), ("p99", 99)):
                m = float(np.percentile(values.dropna(), q))
                row[f"{metric}_{stat}_err"] = (lat[metric][stat] / m - 1) * 100
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:+.1f}"


def _live_table(live: pd.DataFrame) -> list[str]:
    header = "| run | reps | " + " | ".join(f"{k} (spread)" for k in KEYS) + " | out tok/s |"
    lines = [header, "|" + "---|" * (len(KEYS) + 3)]
    for r in live.itertuples():
        d = r._asdict()
        cells = [f"{_fmt(d.get(k + '_err'))} ({d.get(k + '_spread', float('nan')):.0f})"
                 for k in KEYS]  # fmt: skip
        tag = " (overloaded)" if r.overloaded else " (fit)" if r.fit else ""
        lines.append(f"| {r.run}{tag} | {r.reps} | " + " | ".join(cells)
                     + f" | {_fmt(d.get('output_tokens_per_s_err'))} |")  # fmt: skip
    return lines


def _medians(live: pd.DataFrame) -> list[str]:
    lines = []
    held_out = live[~live.fit]
    for label, sub, target in (
        ("held-out, not overloaded", held_out[~held_out.overloaded], 10),
        ("overloaded", held_out[held_out.overloaded], 20),
        ("fit (in-sample)", live[live.fit], None),
    ):
        if sub.empty:
            continue
        errs = np.abs(sub[[f"{k}_err" for k in KEYS]].to_numpy(dtype=float))
        med = np.nanmedian(errs)
        verdict = "" if target is None else (
            f" (target ≤ {target} %: {'met' if med <= target else 'NOT met'})")  # fmt: skip
        by_metric = zip(KEYS, np.nanmedian(errs, axis=0), strict=True)
        per_metric = ", ".join(f"{k} {v:.1f} %" for k, v in by_metric)
        lines += ["", f"Median absolute error over the {label} runs ({len(sub)}): "
                  f"**{med:.1f} %**{verdict}.", f"Per metric: {per_metric}."]  # fmt: skip
    return lines


def drift_lines(runs: pd.DataFrame) -> list[str]:
    """Mean TPOT p50 / TTFT p50 of each run per session: how much the machine drifts."""
    sessions = list(dict.fromkeys(runs["session"]))
    if len(sessions) < 2:
        return []
    lines = ["", "### Drift between sessions (same runs, mean of repeats, ms)", "",
             "| run | " + " | ".join(f"TPOT p50 `{s}`" for s in sessions) + " | "
             + " | ".join(f"TTFT p50 `{s}`" for s in sessions) + " |",
             "|" + "---|" * (2 * len(sessions) + 1)]  # fmt: skip
    for run, reps in runs.groupby("run", sort=False):
        means = reps.groupby("session")[["p50_tpot_ms", "p50_ttft_ms"]].mean()
        cells = [f"{means.loc[s, col]:.1f}" if s in means.index else "–"
                 for col in ("p50_tpot_ms", "p50_ttft_ms") for s in sessions]  # fmt: skip
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return lines


def frontend_lines(runs: pd.DataFrame) -> list[str]:
    """Client vs server view of TTFT and TPOT (server histograms, where recorded)."""
    have = runs.dropna(subset=["server_ttft_mean_ms"])
    if have.empty:
        return []
    lines = ["", "### Where the client's time goes (server-side histograms, mean ms)", "",
             "The server's own means over each run (Prometheus histogram sums / counts: TTFT "
             "from the request's arrival in the API server, queue = waiting before first "
             "scheduled, prefill = first scheduled to first token, decode per output token). "
             "Client − server TTFT is HTTP and streaming; server TTFT − queue − prefill is "
             "tokenisation and IPC before scheduling.", "",
             "| run | session | reps | client TTFT | server TTFT | client − server | "
             "queue | prefill | server TTFT − queue − prefill | client TPOT | server TPOT |",
             "|" + "---|" * 11]  # fmt: skip
    for (run, session), reps in have.groupby(["run", "session"], sort=False):
        m = reps.mean(numeric_only=True)
        server_tpot = m["server_decode_mean_ms"] / (m["mean_output_len"] - 1)
        cells = [m["mean_ttft_ms"], m["server_ttft_mean_ms"],
                 m["mean_ttft_ms"] - m["server_ttft_mean_ms"], m["server_queue_mean_ms"],
                 m["server_prefill_mean_ms"],
                 m["server_ttft_mean_ms"] - m["server_queue_mean_ms"]
                 - m["server_prefill_mean_ms"], m["mean_tpot_ms"], server_tpot]  # fmt: skip
        lines.append(f"| {run} | `{session}` | {len(reps)} | "
                     + " | ".join(f"{c:.1f}" for c in cells) + " |")  # fmt: skip
    return lines


COVERAGE = REPO / "validation" / "interval_coverage.json"
SOURCE_LABELS = {"live": "live vLLM (CPU)", "gpu-llmservingsim": "GPU, LLMServingSim runs",
                 "gpu-apex": "GPU, APEX+ runs (means)"}  # fmt: skip


def coverage_lines(path: Path = COVERAGE) -> list[str]:
    """The interval-coverage section, from `validation/interval_coverage.py`'s result file."""
    if not path.is_file():
        note = f"No coverage results ({path.name}): run `python validation/interval_coverage.py`."
        return ["", "## Interval coverage", "", note]
    data = json.loads(path.read_text())
    table = pd.DataFrame(data["coverage"])
    level = data["level"]
    minutes = data["wall_s"] / 60
    lines = ["", "## Interval coverage (prediction intervals, issue 18)", "",
             "Regenerated from `validation/interval_coverage.json` (`python "
             f"validation/interval_coverage.py`: {data['replications']} replications per "
             f"interval, {minutes:.0f} min). For each measured case infsim's {level:.0%} "
             "prediction interval is computed on the very requests the benchmark sent "
             "(docs/uncertainty.md), under each set of sources; *coverage* is the share of "
             f"measured values inside it (honest ≈ {level:.0%}), with its 90 % bootstrap "
             "confidence interval over cases in brackets; *w* is the median (hi − lo) / "
             "point estimate. *as measured* = speed noise + cost model (the repeats of a "
             "live run send the same requests, so the workload does not vary between "
             "them); *all sources* adds the workload bootstrap. Live: held-out runs only, "
             "each session with its own calibration and speed noise.", ""]  # fmt: skip
    if any(c.endswith("+ model error") for c in data.get("configs", {})):
        how = {
            "leave-out": "each case with the fit that left its own group out (live: its "
            "session; GPU: its LLMServingSim run or APEX+ tensor-parallel group), so the "
            "coverage is out of sample",
            "shipped": "the shipped fit (in sample)",
        }[data.get("model_error", "shipped")]
        lines += ["*… + model error* adds the fitted sources `model_error` (a factor on the "
                  "whole step and one on its prefill part, σ from out-of-sample validation "
                  "residuals) and `drift` (a per-run speed factor, σ from the live repeats): "
                  f"`validation/fit_model_error.py`; {how}.", ""]  # fmt: skip
    for source, sub in table.groupby("source", sort=False):
        keys = list(dict.fromkeys(sub["key"]))
        n_cases = int(sub["cases"].max())
        lines += [f"### {SOURCE_LABELS.get(source, source)}: {n_cases} cases", "",
                  "| sources | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]  # fmt: skip
        for config, rows in sub.groupby("config", sort=False):
            by_key = rows.set_index("key")
            cells = []
            for key in keys:
                if key not in by_key.index:
                    cells.append("–")
                    continue
                r = by_key.loc[key]
                ci = f"[{r['coverage_ci_lo']:.0%}–{r['coverage_ci_hi']:.0%}]"
                cells.append(f"{r['coverage']:.0%} {ci}, w {r['median_width_rel']:.2f}")
            lines.append(f"| {config} | " + " | ".join(cells) + " |")
        measured = int(sub.groupby("key")["measured"].max().max())
        lines += ["", f"({measured} measured values per metric.)", ""]
    return lines + _centred_lines(pd.DataFrame(data["cases"]))


def _centred_lines(cases: pd.DataFrame) -> list[str]:
    """Live coverage with each interval rescaled by measured mean / point: the width
    judged apart from the point's bias (is the spread right, if the centre were?)."""
    live = cases[cases["source"] == "live"] if "source" in cases else cases.iloc[:0]
    if live.empty:
        return []
    keys = list(dict.fromkeys(live["key"]))
    lines = ["### Live vLLM (CPU): the width apart from the bias", "",
             "Each interval rescaled by (mean of the measured repeats) / point, then coverage "
             "as above; the last row is the point's median |error| against that mean (%).",
             "",
             "| sources | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]  # fmt: skip
    errors: dict[str, float] = {}
    for config, sub in live.groupby("config", sort=False):
        cells = []
        for key in keys:
            rows = sub[sub["key"] == key]
            hits = total = 0
            errs = []
            for r in rows.itertuples():
                m = np.asarray(r.measured, dtype=float)
                shift = m.mean() / r.point
                hits += int(((m >= r.lo * shift) & (m <= r.hi * shift)).sum())
                total += m.size
                errs.append(abs(r.point / m.mean() - 1) * 100)
            errors[key] = float(np.median(errs)) if errs else float("nan")
            cells.append(f"{hits / total:.0%}" if total else "–")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    lines.append("| point's median abs error % | "
                 + " | ".join(f"{errors[k]:.1f}" for k in keys) + " |")  # fmt: skip
    return [*lines, ""]


def render(
    live: pd.DataFrame,
    gpu: pd.DataFrame,
    drift: list[str] = (),
    apex: list[str] = (),
    coverage: list[str] = (),
) -> str:
    lines = ["# Validation: predicted vs measured", "",
             "Regenerated by `python validation/report.py`. Signed error of the prediction "
             "in %, against the mean of the live repeats; *spread* is (max − min)/mean of the "
             "repeats, the live noise.", "",
             "## Live vLLM (CPU) matrix: tiny-llama, `scenarios/vllm-cpu-tiny-llama.yaml`", "",
             "Runs are grouped by measurement *session* (a server start on the shared 2-core "
             "machine; `session.txt` in each repeat). The machine's speed drifts between "
             "sessions by more than the model's error (see the drift table), so each session "
             "is predicted with a calibration fitted on its own closed-loop runs (marked "
             "*fit*: `conc-c*` TPOT → `infsim calibrate overhead`, concurrency-1 TTFT → "
             "`infsim calibrate frontend`), and the targets are judged on the other, "
             "held-out runs."]  # fmt: skip
    sessions = list(dict.fromkeys(live["session"]))
    for session in sessions[::-1]:
        sub = live[live["session"] == session]
        lines += ["", f"### Session `{session}`", ""]
        if sub["noise_cv"].notna().any():
            lines += [f"Speed noise estimated from the session's one-in-flight runs "
                      f"(`infsim calibrate noise`): cv {sub['noise_cv'].iloc[0]:.3f}, "
                      f"correlation {sub['noise_correlation_s'].iloc[0]:.2f} s.", ""]  # fmt: skip
        lines += [*_live_table(sub), *_medians(sub)]
    if len(sessions) > 1:
        lines += ["", "### All sessions pooled", *_medians(live)]
    findings = REPO / "validation" / "findings.md"
    if findings.is_file():
        lines += ["", findings.read_text().rstrip()]
    lines += drift
    if not gpu.empty:
        lines += ["", "## Measured GPU runs (vLLM 0.19, LLMServingSim bench)", "",
                  "| run | cost model | " + " | ".join(KEYS) + " |",
                  "|" + "---|" * (len(KEYS) + 2)]  # fmt: skip
        for r in gpu.itertuples():
            d = r._asdict()
            lines.append(f"| {d['run']} | {d['_2']} | "
                         + " | ".join(_fmt(d.get(k + '_err')) for k in KEYS) + " |")  # fmt: skip
    lines += apex
    lines += coverage
    lines += [
        "",
        "## Published errors of peer simulators",
        "",
        "| simulator | error |",
        "|---|---|",
    ]
    lines += [f"| {n} | {e} |" for n, e in PEERS]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "validation.md")
    ap.add_argument("--speed-noise", action="store_true",
                    help="predict each session with its estimated speed noise "
                         "(infsim calibrate noise on its one-in-flight runs)")  # fmt: skip
    args = ap.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        live = live_rows(REPO / "validation" / "live", Path(work), args.speed_noise)
    gpu = gpu_rows(args.shared)
    runs = pd.read_csv(REPO / "validation" / "live" / "runs.csv")
    apex = apex_section(args.shared)
    text = render(live, gpu, drift_lines(runs) + frontend_lines(runs), apex, coverage_lines())
    args.out.write_text(text)
    print(args.out.read_text())  # noqa: T201


if __name__ == "__main__":
    main()
