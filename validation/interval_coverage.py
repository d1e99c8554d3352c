"""Are infsim's prediction intervals honest? Coverage of the 90 % intervals against measured
runs (issue 18): the live vLLM (CPU) matrix and the GPU runs of ../shared/data/validation.

    python validation/interval_coverage.py [--shared ../shared/data] [--replications 10] [--jobs 2]
                                  [--out validation/interval_coverage.json]
                                  [--model-error leave-out|shipped] [--configs NAMES]
                                  [--only live|gpu|all] [--merge]

For every measured case the interval is computed as `infsim run --intervals N` would (the
replications of `infsim.uncertainty` on a process pool), on the very requests the benchmark
sent, under several source sets:

    as measured   speed_noise + cost_model: the repeats of a live run send the same requests,
                  so the workload does not vary between them; what varies is the engine's
                  speed (each session's `infsim calibrate noise` estimate) and what the model
                  cannot know (its own error)
    cost model    cost_model alone
    speed noise   speed_noise alone (live runs; GPU scenarios have no speed noise)
    all sources   workload (moving-block bootstrap of the replayed arrivals) as well
    ... + model error   the same with the fitted sources `model_error` and `drift`
                  (docs/uncertainty.md), their σ from `validation/fit_model_error.py`:
                  with `--model-error leave-out` (the default) each case takes the fit that
                  left its own group out (live: its session; GPU: its LLMServingSim run or
                  APEX+ tensor-parallel group), so the coverage is out of sample;
                  `--model-error shipped` takes the shipped fit (in sample)

Each case also records, per metric, how much the prefill factor of the cost hook moves
the point (`prefill_elasticity`: d log value / d log factor, a secant over ×1/1.2 to ×1.2,
`PREFILL_STEP`; two more base runs with the same requests and seed): the model-error fit
turns the TTFT-only residual into a prefill factor with it (validation/fit_model_error.py).

Coverage = the share of measured values inside the interval (every repeat of a live run
counts once); width = (hi − lo) / point estimate, median over cases. The 90 % bootstrap
confidence interval of each coverage (scipy.stats.bootstrap over cases, percentile method,
seeded) says how much it can be trusted with this many cases.

Live cases: the held-out runs of every session (not its `conc-c*`/`kv-c1-*` fit runs),
predicted with that session's own calibration and speed noise, as validation/report.py
does with --speed-noise. GPU cases: LLMServingSim's vLLM 0.19 runs (p50/p99 of TTFT, TPOT,
E2E from per-request timestamps; one measurement each; both cost models) and APEX+'s
vLLM 0.6.0 runs (means; TPOT there is token-weighted, so its interval is the relative
interval of the per-request TPOT mean applied to the token-weighted prediction).
The result is written to `validation/interval_coverage.json`; validation/report.py renders
it into docs/validation.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from infsim import api
from infsim.cost.perturb import OpMultipliers, scaling
from infsim.scenario.load import load_scenario, validate_scenario
from infsim.sweep.executors import make_executor
from infsim.uncertainty.intervals import flatten_numbers
from infsim.uncertainty.model_error import ModelError, shipped
from infsim.uncertainty.predict import IntervalOptions, uncertainty_sections
from infsim.validation.compare import measured_stats
from infsim.validation.formats import load_measured
from infsim.validation.replay import attach_prefix_ids, replay_trace, successful_rows
from infsim.validation.validate import all_at_once
from infsim.workload.loaders import load_trace
from infsim.workload.spec import WorkloadSpec
from infsim.workload.trace import Trace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apex
import report
from fit_model_error import LEAVE_OUT
from live_store import materialise_all

REPO = Path(__file__).resolve().parents[1]
LEVEL = 0.9
PREFILL_STEP = 1.2
"""The prefill factors of the elasticity secant: ×1/1.2 and ×1.2 (about one σ of the fitted
prefill factor, so the secant spans the range the draws do)."""
CONFIGS = {
    "as measured": ("speed_noise", "cost_model"),
    "cost model": ("cost_model",),
    "speed noise": ("speed_noise",),
    "all sources": ("workload", "speed_noise", "cost_model"),
    "as measured + model error": ("speed_noise", "cost_model", "model_error", "drift"),
    "all sources + model error": ("workload", "speed_noise", "cost_model", "model_error",
                                  "drift"),
}  # fmt: skip
GPU_CONFIGS = ("as measured", "all sources", "as measured + model error",
               "all sources + model error")  # fmt: skip
LIVE_KEYS = {
    **{f"{m}_{s}": f"latency_s.{m}.{s}" for m in ("ttft", "tpot", "e2e") for s in ("p50", "p99")},
    "output_tokens_per_s": "throughput.output_tokens_per_s",
}


def _leaf(intervals: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    node: Any = intervals
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


class Predictor:
    """Base run plus intervals for a scenario fed a fixed trace (written to a Parquet file
    the scenario's workload names, so every replication re-reads the same requests)."""

    def __init__(self, work: Path, replications: int, jobs: int, fits: str = "leave-out",
                 only_configs: tuple[str, ...] = tuple(CONFIGS)) -> None:  # fmt: skip
        self.work, self.n, self.fits = work, replications, fits
        self.only_configs = only_configs
        self.executor = make_executor("process", jobs)
        self._count = 0

    def configs(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The configs of `names` this run computes (`--configs`)."""
        return tuple(n for n in names if n in self.only_configs)

    def error(self, kind: str, group: str) -> ModelError | None:
        """σ of the fitted sources for a case of `group` (module doc: --model-error); None
        when no config computed uses them."""
        if not any("model_error" in CONFIGS[c] for c in self.only_configs):
            return None
        if self.fits == "shipped":
            return shipped(kind)
        fits = json.loads(LEAVE_OUT.read_text())["groups"][kind]
        return ModelError.from_dict(fits[group], f"{LEAVE_OUT.name}: {kind} without {group}")

    def __call__(
        self,
        scenario: Any,
        trace: Trace,
        configs: tuple[str, ...],
        max_concurrency: int | None,
        error: ModelError | None = None,
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, float]]:
        """(base summary, intervals per config, prefill elasticity per dotted key)."""
        self._count += 1
        path = self.work / f"trace-{self._count}.parquet"
        trace.to_parquet(path)
        workload = {"trace": {"path": str(path)}, "max_concurrency": max_concurrency}
        if trace.hash_block_size_tokens is not None:
            workload["trace"]["hash_block_size_tokens"] = trace.hash_block_size_tokens
        spec = scenario.model_copy(update={"workload": WorkloadSpec.model_validate(workload)})
        resolved, replay = api.prepare(spec, self.work)
        base = api.run_resolved(resolved, replay).summary
        moved = []
        for factor in (1 / PREFILL_STEP, PREFILL_STEP):
            with scaling(OpMultipliers(prefill=factor)):
                moved.append(flatten_numbers(api.run_resolved(resolved, replay).summary,
                                             ("latency_s",)))  # fmt: skip
        elasticity = {
            key: math.log(moved[1][key] / moved[0][key]) / (2 * math.log(PREFILL_STEP))
            for key in moved[0]
            if moved[0][key] > 0 and moved[1].get(key, 0.0) > 0
        }
        out = {}
        for name in configs:
            options = IntervalOptions(self.n, LEVEL, CONFIGS[name], model_error=error)
            out[name] = uncertainty_sections(spec, resolved, base, options, self.executor)[
                "intervals"
            ]
        return base, out, elasticity


def _record(case: dict, base: dict, intervals: dict, measured: dict[str, list[float]],
            keys: dict[str, str], elasticity: dict[str, float],
            ) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (config, key): the point, the bounds, the measured values, the
    point's prefill elasticity."""
    rows = []
    for config, iv in intervals.items():
        for key, dotted in keys.items():
            values = [v for v in measured.get(key, []) if v is not None and math.isfinite(v)]
            leaf = _leaf(iv, dotted)
            point = _leaf(base, dotted)
            if not values or leaf is None or leaf["lo"] is None or point in (None, 0):
                continue
            rows.append({**case, "config": config, "key": key, "point": point,
                         "lo": leaf["lo"], "hi": leaf["hi"], "measured": values,
                         "prefill_elasticity": elasticity.get(dotted)})  # fmt: skip
    return rows


def live_cases(live: Path, work: Path, predict: Predictor) -> list[dict[str, Any]]:
    """Every held-out run of every session (see the module doc)."""
    runs = pd.read_csv(live / "runs.csv")
    bench_root = materialise_all(work / "live", [f"{r.run}/{r.rep}" for r in runs.itertuples()],
                                 live=live)  # fmt: skip
    rows: list[dict[str, Any]] = []
    for index, (session, in_session) in enumerate(runs.groupby("session", sort=False)):
        noise = ["hardware.speed_noise=null"]
        estimate = report.session_noise(bench_root, in_session)
        if estimate is not None:
            noise = [f"hardware.speed_noise={{cv: {estimate[0]}, correlation_s: {estimate[1]}}}"]
        cal = report.session_calibration(bench_root, in_session, work / f"session-{index}", noise)
        groups = in_session.groupby(["run", "server", "kv_cache_tokens"], sort=False, dropna=False)
        for (run, server, kv), reps in groups:
            if report.FIT_RUNS.fullmatch(run):
                continue
            overrides = [*report.server_overrides(server, None if pd.isna(kv) else float(kv)),
                         f"calibration={cal}", *noise]  # fmt: skip
            scenario = load_scenario(report.SCENARIO, overrides)
            benches = [bench_root / run / rep / "result.json" for rep in reps["rep"]]
            measured: dict[str, list[float]] = {}
            for bench in benches:
                m = load_measured(bench)
                values, _ = measured_stats(m, successful_rows(m, None)[0])
                for key in LIVE_KEYS:
                    measured.setdefault(key, []).append(values.get(key))
            first = load_measured(benches[0])
            rows_, _ = successful_rows(first, None)
            trace = replay_trace(rows_, str(benches[0]), send_at_once=all_at_once(first))
            prefix_file = live / run / "trace.jsonl"
            if prefix_file.is_file():
                prefix = load_trace(prefix_file, hash_block_size_tokens=scenario.engine.block_size)
                trace = attach_prefix_ids(trace, prefix, str(benches[0]))
            base, intervals, elasticity = predict(
                scenario, trace, predict.configs(CONFIGS), first.max_concurrency,
                predict.error("cpu", session))  # fmt: skip
            case = {"source": "live", "session": session, "case": run,
                    "overloaded": run in report.OVERLOADED,
                    "noise": estimate is not None}  # fmt: skip
            rows += _record(case, base, intervals, measured, LIVE_KEYS, elasticity)
            print(f"live {session} {run}: {len(benches)} repeats", file=sys.stderr)  # noqa: T201
    return rows


def gpu_cases(shared: Path, predict: Predictor) -> list[dict[str, Any]]:
    """LLMServingSim's vLLM 0.19 runs, as validation/report.py replays them."""
    rows: list[dict[str, Any]] = []
    keys = {k: v for k, v in LIVE_KEYS.items() if k != "output_tokens_per_s"}
    for label, calibration, raw, trace, measured in report.gpu_cases(shared):
        scenario = validate_scenario(raw, "gpu-validation")
        error = predict.error("gpu", f"gpu-llmservingsim:{label}")
        base, intervals, elasticity = predict(scenario, trace, predict.configs(GPU_CONFIGS),
                                              None, error)  # fmt: skip
        case = {"source": "gpu-llmservingsim", "session": calibration, "case": label,
                "overloaded": True, "noise": False}  # fmt: skip
        values = {f"{m}_{s}": [float(np.percentile(v.dropna(), q))]
                  for m, v in measured.items() for s, q in (("p50", 50), ("p99", 99))}  # fmt: skip
        rows += _record(case, base, intervals, values, keys, elasticity)
        print(f"gpu {label} {calibration}", file=sys.stderr)  # noqa: T201
    return rows


def apex_cases(shared: Path, predict: Predictor) -> list[dict[str, Any]]:
    """APEX+'s runs: means, TPOT token-weighted (module doc)."""
    base_dir = shared / apex.DATA
    if not (base_dir / "summary.csv").is_file():
        return []
    summary = pd.read_csv(base_dir / "summary.csv")
    diffs = pd.read_csv(base_dir / "per_request_length_diffs.csv")
    rows: list[dict[str, Any]] = []
    for run in summary.itertuples():
        if run.model_family != "llama" or run.empty_file:
            continue
        requests = apex.rank_requests(shared, run, diffs)
        if requests is None:
            continue
        tp, _ = apex.PLANS[run.parallel]
        scenario, trace = apex.scenario_and_trace(requests, tp)
        error = predict.error("gpu", f"gpu-apex:TP{tp}")
        base, intervals, elasticity = predict(scenario, trace, predict.configs(GPU_CONFIGS),
                                              None, error)  # fmt: skip
        point = apex.predict(requests, tp)  # TPOT token-weighted, as APEX+ measured it
        measured = {"ttft_mean": [run.ttft_mean_s], "tpot_mean": [run.tpot_mean_s],
                    "e2e_mean": [run.latency_sum_s / len(requests)]}  # fmt: skip
        if run.file in apex.NO_E2E:
            measured.pop("e2e_mean")
        for iv in intervals.values():  # relative interval of the per-request TPOT mean
            leaf, mean = iv["latency_s"]["tpot"]["mean"], base["latency_s"]["tpot"]["mean"]
            leaf["lo"], leaf["hi"] = (point["tpot"] * leaf[b] / mean for b in ("lo", "hi"))
        base["latency_s"]["tpot"]["mean"] = point["tpot"]
        case = {"source": "gpu-apex", "session": f"TP{tp}", "case": run.file,
                "overloaded": False, "noise": False}  # fmt: skip
        keys = {f"{m}_mean": f"latency_s.{m}.mean" for m in ("ttft", "tpot", "e2e")}
        rows += _record(case, base, intervals, measured, keys, elasticity)
        print(f"apex {run.file}", file=sys.stderr)  # noqa: T201
    return rows


def coverage_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (source, config, key): cases, measured values, coverage and its bootstrap 90 %
    CI, median relative width."""
    out = []
    for (source, config, key), sub in rows.groupby(["source", "config", "key"], sort=False):
        hits = np.array(
            [
                sum(lo <= v <= hi for v in m)
                for lo, hi, m in zip(sub["lo"], sub["hi"], sub["measured"], strict=True)
            ]
        )
        counts = np.array([len(m) for m in sub["measured"]])  # fmt: skip
        cover = float(hits.sum() / counts.sum())
        ci = (cover, cover)
        if len(sub) >= 3 and 0 < cover < 1:  # resample cases (a run's repeats move together)
            res = stats.bootstrap(
                (hits, counts),
                lambda h, n: h.sum() / n.sum(),
                paired=True,
                vectorized=False,
                confidence_level=0.9,
                n_resamples=2000,
                method="percentile",
                random_state=np.random.default_rng(18),
            )
            ci = (float(res.confidence_interval.low), float(res.confidence_interval.high))
        width = ((sub["hi"] - sub["lo"]) / sub["point"]).median()
        out.append({"source": source, "config": config, "key": key, "cases": len(sub),
                    "measured": int(sum(len(m) for m in sub["measured"])),
                    "coverage": cover, "coverage_ci_lo": ci[0], "coverage_ci_hi": ci[1],
                    "median_width_rel": float(width)})  # fmt: skip
    return pd.DataFrame(out)


def _round(value: Any) -> Any:
    """Floats to 4 significant digits, recursively (the file stays small and diffable)."""
    if isinstance(value, float | np.floating):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, np.bool_ | np.integer):
        return value.item()
    return value


def compact_json(result: dict[str, Any]) -> str:
    """The result file: the coverage table one row per line, then one line per case."""
    result = _round(result)
    head = {k: v for k, v in result.items() if k not in ("coverage", "cases")}
    lines = [json.dumps(head)[:-1] + ', "coverage": [']
    lines += [json.dumps(r) + "," for r in result["coverage"]]
    lines[-1] = lines[-1].rstrip(",")
    lines += ['], "cases": [']
    lines += [json.dumps(r) + "," for r in result["cases"]]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["]}"]
    return "\n".join(lines) + "\n"


def merged(frame: pd.DataFrame, previous: dict[str, Any], only: tuple[str, ...]) -> pd.DataFrame:
    """`frame` plus the previous file's cases of the sources `frame` does not have (same
    source sets required: a coverage table mixes no two runs' configs)."""
    if set(previous["configs"]) != set(only):
        raise SystemExit(f"--merge: the existing file has source sets {list(previous['configs'])}"
                         f", this run {list(only)}; run the same --configs")  # fmt: skip
    kept = pd.DataFrame(previous["cases"])
    kept = kept[~kept["source"].isin(set(frame["source"]))]
    return pd.concat([kept, frame], ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "validation" / "interval_coverage.json")
    ap.add_argument("--only", choices=("live", "gpu", "all"), default="all")
    ap.add_argument("--model-error", choices=("leave-out", "shipped"), default="leave-out",
                    help="σ of the model_error/drift sources: each case's leave-one-group-out "
                    "fit (out of sample) or the shipped fit")  # fmt: skip
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help="comma-separated source sets to compute (default: all of "
                    f"{', '.join(CONFIGS)}); validation/fit_model_error.py needs "
                    "'as measured' alone")  # fmt: skip
    ap.add_argument("--merge", action="store_true",
                    help="keep the --out file's cases of the sources not recomputed (e.g. "
                    "the live ones under --only gpu) and write the union")  # fmt: skip
    args = ap.parse_args()
    only = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    if not only or set(only) - set(CONFIGS):
        ap.error(f"--configs {args.configs!r}: choose from {', '.join(CONFIGS)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        predict = Predictor(work, args.replications, args.jobs, args.model_error, only)
        rows: list[dict[str, Any]] = []
        if args.only in ("live", "all"):
            rows += live_cases(REPO / "validation" / "live", work, predict)
        if args.only in ("gpu", "all"):
            rows += gpu_cases(args.shared, predict)
            rows += apex_cases(args.shared, predict)
    frame = pd.DataFrame(rows)
    if args.merge and args.out.exists():
        frame = merged(frame, json.loads(args.out.read_text()), only)
    table = coverage_table(frame)
    result = {
        "level": LEVEL,
        "replications": args.replications,
        "configs": {k: list(v) for k, v in CONFIGS.items() if k in only},
        "prefill_step": PREFILL_STEP,
        "model_error": args.model_error,
        "wall_s": time.perf_counter() - started,
        "coverage": table.to_dict(orient="records"),
        "cases": frame.to_dict(orient="records"),
    }
    args.out.write_text(compact_json(result))
    print(table.to_string(index=False))  # noqa: T201


if __name__ == "__main__":
    main()
