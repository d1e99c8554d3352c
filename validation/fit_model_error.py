"""Fit the `model_error` and `drift` sources of the prediction intervals (issue 18;
docs/uncertainty.md, *model_error*) to out-of-sample validation residuals.

    python validation/fit_model_error.py [--cases validation/interval_coverage.json]
        [--out infsim/uncertainty/model_error.json]
        [--leave-out validation/model_error_leave_out.json]

Data. The residuals are infsim's point predictions against measured runs that did not
calibrate it: the `cases` of `validation/interval_coverage.json` (the base run of each
case, unperturbed, so no interval source changes it): the live vLLM (CPU) matrix's held-out
runs (each session predicted with a calibration fitted on its own `conc-c*`/`kv-c1-*` runs,
as validation/report.py does) and the GPU runs of ../shared/data/validation that use a
calibration table (LLMServingSim's vLLM 0.19 runs with their GPU's table; APEX+'s vLLM 0.6
runs with h100-vllm-0.19). The drift uses `validation/live/runs.csv` (every repeat).

Fits, per device kind (`cpu`: live; `gpu`):

    step, prefill  together (`infsim.uncertainty.model_error.fit_step_prefill`), on the
           second moments of two residuals per case: log(measured mean / predicted) of
           TPOT (p50 live and LLMServingSim, mean APEX+), which the step factor moves 1:1
           and the prefill factor by e_TPOT, and of TTFT (same statistics), moved 1:1 and
           by e_TTFT (each the point's `prefill_elasticity`, which interval_coverage.py
           measures per case). Each residual's square is first reduced by what is
           accounted for elsewhere: the variance of the mean of the case's n repeats
           (live) and the variance the `speed_noise` and `cost_model` sources already draw
           for it (its `as measured` interval's log-σ), so that the sources together,
           not `model_error` alone, match the residuals. The two σ² ≥ 0 are the
           non-negative least-squares solution over all cases' equations. (Before
           2026-12-07 the prefill factor was sized on the TTFT-only residual, TTFT's log
           ratio minus TPOT's, over e_TTFT − e_TPOT: that counts TPOT's own point error a
           second time whenever the two errors are not one error, and made the CPU
           intervals over-cover; it is kept in the fit file as `sigma_ttft_only`.)
    drift  live only: log(repeat / mean of its (session, run)) of TPOT p50, each scaled by
           √(n / (n − 1)) (the deviation from a sample mean understates σ), over every run
           with ≥ 2 repeats. GPU: 0 (no repeats; its single-run residuals hold it already).

`fallback` (a device kind without held-out data): the larger σ of the two kinds, factor by
factor. The leave-out file has, per device kind and held-out group (live: measurement
session; GPU: each LLMServingSim run, each APEX+ tensor-parallel group), the same fits
without that group's data: `validation/interval_coverage.py --model-error leave-out` uses
them, so the coverage it reports is out of sample.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from infsim.uncertainty.model_error import FIT_FILE, fit_sigma, fit_step_prefill

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "validation" / "interval_coverage.json"
RUNS = REPO / "validation" / "live" / "runs.csv"
LEAVE_OUT = REPO / "validation" / "model_error_leave_out.json"
CONFIG = "as measured"  # speed noise + cost model: what the other sources draw
MIN_ELASTICITY = 0.25
"""Least |e_TTFT − e_TPOT| for a case to size the prefill factor (module doc)."""
STEP_KEY = {"live": "tpot_p50", "gpu-llmservingsim": "tpot_p50", "gpu-apex": "tpot_mean"}
TTFT_KEY = {"live": "ttft_p50", "gpu-llmservingsim": "ttft_p50", "gpu-apex": "ttft_mean"}


def drawn_sigma(lo: float, hi: float, replications: int, level: float) -> float:
    """The log-σ of the replications behind a prediction interval (`uncertainty.intervals`:
    exp(m ± t·s·√(1 + 1/N)) → s)."""
    t = float(stats.t.ppf((1 + level) / 2, replications - 1))
    return float(np.log(hi / lo) / (2 * t * np.sqrt(1 + 1 / replications)))


def residuals(cases: pd.DataFrame, replications: int = 0, level: float = 0.9) -> pd.DataFrame:
    """One row per case: group, kind, log ratios of the step (TPOT) and the TTFT-only
    residual (`ttft_only`: TTFT − TPOT), the prefill elasticities of TTFT and TPOT
    (`e_ttft`, `e_tpot`) and the variance of each residual that is accounted for
    elsewhere: the measurement's own repeat noise (variance of a mean of n repeats) and,
    for the step, what the other sources already draw (the `as measured` interval's σ:
    speed noise + cost model, `drawn_sigma`; `replications` 0: none)."""
    if "prefill_elasticity" not in cases:
        raise SystemExit(
            "the cases have no prefill_elasticity: rerun validation/interval_coverage.py "
            "(--configs 'as measured' is enough for this fit)"
        )
    cases = cases[cases["config"] == CONFIG]  # every config has the same points
    rows = []
    for (source, session, case), sub in cases.groupby(["source", "session", "case"], sort=False):
        if source != "live" and session == "roofline":
            continue  # the roofline's own error is the cost_model source's (σ 0.25)
        by_key = sub.set_index("key")
        if STEP_KEY[source] not in by_key.index or TTFT_KEY[source] not in by_key.index:
            continue
        tpot, ttft = by_key.loc[STEP_KEY[source]], by_key.loc[TTFT_KEY[source]]
        m_tpot = np.log(np.asarray(tpot["measured"], dtype=float))
        m_ttft = np.log(np.asarray(ttft["measured"], dtype=float))
        step = np.log(np.mean(np.exp(m_tpot)) / tpot["point"])
        ttft_only = np.log(np.mean(np.exp(m_ttft)) / ttft["point"]) - step
        ttft_log = np.log(np.mean(np.exp(m_ttft)) / ttft["point"])
        n = m_tpot.size
        noise_step = noise_ttft_only = noise_ttft = 0.0
        if n > 1 and m_ttft.size == n:
            noise_step = float(np.var(m_tpot, ddof=1) / n)
            noise_ttft_only = float(np.var(m_ttft - m_tpot, ddof=1) / n)
            noise_ttft = float(np.var(m_ttft, ddof=1) / n)
        if replications >= 2 and tpot["lo"] and tpot["hi"]:
            noise_step += drawn_sigma(tpot["lo"], tpot["hi"], replications, level) ** 2
        if replications >= 2 and ttft["lo"] and ttft["hi"]:
            noise_ttft += drawn_sigma(ttft["lo"], ttft["hi"], replications, level) ** 2
        group = (
            session if source == "live" else f"{source}:{case if source != 'gpu-apex' else session}"
        )
        rows.append({"kind": "cpu" if source == "live" else "gpu", "group": group,
                     "step": step, "ttft_only": ttft_only, "noise_step": noise_step,
                     "noise_ttft_only": noise_ttft_only, "ttft": ttft_log,
                     "noise_ttft": noise_ttft,
                     "e_ttft": float(ttft["prefill_elasticity"]),
                     "e_tpot": float(tpot["prefill_elasticity"])})  # fmt: skip
    return pd.DataFrame(rows)


def drift_deviations(runs: pd.DataFrame) -> pd.DataFrame:
    """Per repeat: session and log(TPOT p50 / the geometric mean of its (session, run)),
    scaled by √(n / (n − 1))."""
    out = []
    for (session, _run, _server), reps in runs.groupby(["session", "run", "server"], sort=False):
        x = np.log(reps["p50_tpot_ms"].dropna().to_numpy(dtype=float))
        if x.size < 2:
            continue
        dev = (x - x.mean()) * np.sqrt(x.size / (x.size - 1))
        out += [{"session": session, "deviation": float(d)} for d in dev]
    return pd.DataFrame(out)


def fit_kind(res: pd.DataFrame, drift: pd.DataFrame | None) -> dict[str, Any]:
    """The fits of one device kind (`res`: its residual rows; `drift`: its repeat
    deviations, None where there are none): step and prefill together on the second
    moments of TPOT's and TTFT's residuals (`fit_step_prefill`), each less its repeat
    noise and what the other sources draw; drift on the repeats. The earlier sizing of the
    prefill factor on the TTFT-only residual (TTFT's minus TPOT's) is kept for the record
    (`prefill.sigma_ttft_only`)."""
    joint = fit_step_prefill(res["step"], res["noise_step"], res["e_tpot"],
                             res["ttft"], res["noise_ttft"], res["e_ttft"])  # fmt: skip
    e = res["e_ttft"] - res["e_tpot"]
    sized = res[e.abs() >= MIN_ELASTICITY]
    e = e[sized.index]
    only = fit_sigma(sized["ttft_only"] / e, float((sized["noise_ttft_only"] / e**2).mean()))
    out = {
        "step": {"sigma": joint["step"], "rms": _rms(res["step"]),
                 "mean": float(res["step"].mean()), "n": joint["n"]},
        "prefill": {"sigma": joint["prefill"], "rms_ttft": _rms(res["ttft"]),
                    "mean_ttft": float(res["ttft"].mean()),
                    "median_elasticity_ttft": float(res["e_ttft"].median()),
                    "median_elasticity_tpot": float(res["e_tpot"].median()),
                    "sigma_ttft_only": only["sigma"], "n": joint["n"]},
    }  # fmt: skip
    if drift is None or drift.empty:
        out["drift"] = {"sigma": 0.0, "note": "no repeats: the single-run residuals hold it"}
    else:
        out["drift"] = fit_sigma(drift["deviation"])
    out["cases"] = len(res)
    out["groups"] = sorted(res["group"].unique().tolist())
    return out


def _rms(x: pd.Series) -> float:
    return float(np.sqrt(np.mean(np.square(x.to_numpy(dtype=float)))))


def _round(node: Any) -> Any:
    if isinstance(node, float):
        return None if not np.isfinite(node) else float(f"{node:.4g}")
    if isinstance(node, dict):
        return {k: _round(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_round(v) for v in node]
    return node


def _name(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def fit(cases_path: Path, runs_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(shipped fit, leave-out fits)."""
    data = json.loads(cases_path.read_text())
    res = residuals(pd.DataFrame(data["cases"]), data["replications"], data["level"])
    drift = drift_deviations(pd.read_csv(runs_path))
    groups: dict[str, Any] = {}
    leave_out: dict[str, Any] = {}
    for kind, sub in res.groupby("kind", sort=True):
        kind_drift = drift if kind == "cpu" else None
        groups[kind] = fit_kind(sub, kind_drift)
        leave_out[kind] = {}
        for group in sorted(sub["group"].unique()):
            rest = sub[sub["group"] != group]
            rest_drift = None if kind_drift is None else kind_drift[kind_drift["session"] != group]
            leave_out[kind][group] = fit_kind(rest, rest_drift)
    fallback = {f: {"sigma": max(g[f]["sigma"] for g in groups.values())}
                for f in ("step", "prefill", "drift")}  # fmt: skip
    digest = hashlib.sha256(res.round(12).to_csv(index=False).encode())  # the residuals,
    digest.update(runs_path.read_bytes())  # not the whole coverage file (rewritten by its run)
    shipped = {
        "about": "σ of the model_error (step, prefill) and drift sources of infsim's prediction "
        "intervals; written by validation/fit_model_error.py (see its docstring and "
        "docs/uncertainty.md)",
        "method": "step and prefill: zero-centred second moments of log(measured mean / "
        "predicted) of TPOT and TTFT per case, less the mean's repeat noise and what the "
        "speed_noise and cost_model sources draw (the 'as measured' interval), solved "
        "together with each factor's elasticity (step 1; prefill e_TPOT, e_TTFT) by "
        "non-negative least squares (infsim.uncertainty.model_error.fit_step_prefill); "
        "drift: scipy.stats.norm.fit floc=0 on the repeats' log deviations; t_df: a t "
        "fit's degrees of freedom, for the record",
        "data": {
            "cases": _name(cases_path),
            "runs": _name(runs_path),
            "sha256_of_residuals_and_runs": digest.hexdigest()[:16],
            "cpu": "live vLLM 0.32 CPU matrix, held-out runs of 5 sessions (tiny-llama)",
            "gpu": "LLMServingSim vLLM 0.19 runs with their GPU's table (RTX 4090, RTX PRO "
            "6000) and APEX+ vLLM 0.6.0 runs on 8×H100 (h100-vllm-0.19)",
        },
        "groups": groups,
        "fallback": {**fallback, "note": "the larger σ of the fitted kinds, per factor"},
    }
    return _round(shipped), _round({"about": "leave-one-group-out fits (module doc of "
                                             "validation/fit_model_error.py)",
                                    "groups": leave_out})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=Path, default=CASES)
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--out", type=Path, default=FIT_FILE)
    ap.add_argument("--leave-out", type=Path, default=LEAVE_OUT)
    args = ap.parse_args()
    shipped, leave_out = fit(args.cases.resolve(), args.runs.resolve())
    args.out.write_text(json.dumps(shipped, indent=1, ensure_ascii=False) + "\n")
    args.leave_out.write_text(json.dumps(leave_out, indent=1, ensure_ascii=False) + "\n")
    for kind, g in shipped["groups"].items():
        print(kind, {f: g[f]["sigma"] for f in ("step", "prefill", "drift")},  # noqa: T201
              f"{g['cases']} cases", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
