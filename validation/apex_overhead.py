# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""Derive vLLM V0's default host step overhead from APEX+'s vLLM 0.6.0 runs on 8×H100.

    python validation/apex_overhead.py [--shared ../shared/data] [--rounds 3]

The kernel table (`h100-vllm-0.19`) prices each step's kernels; what APEX+'s server
measured beyond them in decode is host work per step. Each run's measured decode time
(TPOT × output tokens = Σ(E2E − TTFT), from the server's counters) is regressed on its
replay's decode steps (`infsim.calibration.replay_fit.decode_exposure`): per request, the
steps between its first and last token, their widths, and the replica's workers (TP − 1),
with one equation per run scaled to a per-step time:

    (measured − simulated) / steps = Δfixed + Δper_seq · mean width + Δper_worker · (TP − 1)

and the replays are repeated with the updated terms (`--rounds`). The front end is off in
the replays (the server's counters hold no HTTP time). A term that fits below zero is
dropped and the rest refitted.

It prints the fit on all 29 runs (the shipped `VLLM_V0` default in
`infsim/scenario/host_overhead.py`) and, as the check that it is not fitted to one case,
leave-one-workload-out fits (creation / lmsys / summarization) with the TPOT error of each
held-out workload's runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apex import DATA, ENGINE_SIDE, PLANS, rank_requests, simulate

from infsim.calibration.replay_fit import decode_exposure

TERMS = ("fixed_s", "per_seq_s", "per_worker_s")


def usable_runs(shared: Path) -> list[dict]:
    base = shared / DATA
    summary = pd.read_csv(base / "summary.csv")
    diffs = pd.read_csv(base / "per_request_length_diffs.csv")
    runs = []
    for run in summary.itertuples():
        if run.model_family != "llama" or run.empty_file:
            continue
        requests = rank_requests(shared, run, diffs)
        if requests is None:
            continue
        tp, _ = PLANS[run.parallel]
        runs.append({"run": run.file, "workload": run.workload, "tp": tp,
                     "requests": requests, "tpot": run.tpot_mean_s})  # fmt: skip
    return runs


def replay(run: dict, theta: dict[str, float]) -> dict[str, float]:
    """Σ steps, Σ widths, Σ simulated and measured decode seconds of one run under `theta`."""
    sections = {"cost_model": {"step_overhead_s": theta["fixed_s"],
                               "per_seq_overhead_s": theta["per_seq_s"],
                               "per_worker_overhead_s": theta["per_worker_s"]},
                "frontend": ENGINE_SIDE}  # fmt: skip
    result = simulate(run["requests"], run["tp"], sections)
    requests = result.requests.to_pandas()
    done = requests[requests["status"] == "finished"].reset_index(drop=True)
    exp = decode_exposure(done, result.timeline)
    return {"steps": exp.steps.sum(), "widths": exp.seq_steps.sum(),
            "simulated_s": exp.decode_s.sum(),
            "measured_s": run["tpot"] * done["num_output_tokens"].sum()}  # fmt: skip


def fit(runs: list[dict], rounds: int, terms: tuple[str, ...] = TERMS) -> dict:
    theta = dict.fromkeys(TERMS, 0.0)
    for _ in range(rounds):
        sums = [replay(r, theta) for r in runs]
        steps = np.array([s["steps"] for s in sums])
        y = np.array([s["measured_s"] - s["simulated_s"] for s in sums]) / steps
        columns = {"fixed_s": np.ones_like(steps),
                   "per_seq_s": np.array([s["widths"] for s in sums]) / steps,
                   "per_worker_s": np.array([r["tp"] - 1.0 for r in runs])}  # fmt: skip
        free = list(terms)
        while True:
            x = np.column_stack([columns[t] for t in free])
            delta = dict(zip(free, np.linalg.lstsq(x, y, rcond=None)[0], strict=True))
            negative = [t for t in free if theta[t] + delta[t] < 0]
            if not negative:
                break
            for t in negative:  # drop the term (pinned at 0) and refit the rest
                y = y - columns[t] * (0.0 - theta[t])
                theta[t] = 0.0
                free.remove(t)
        for t in free:
            theta[t] += float(delta[t])
    return theta


def tpot_errors(runs: list[dict], theta: dict[str, float]) -> list[float]:
    out = []
    for run in runs:
        s = replay(run, theta)
        out.append((s["simulated_s"] / s["measured_s"] - 1) * 100)
    return out


def describe(theta: dict[str, float]) -> str:
    return (f"{theta['fixed_s'] * 1e3:.3f} ms + {theta['per_seq_s'] * 1e6:.2f} µs/seq + "
            f"{theta['per_worker_s'] * 1e6:.1f} µs/extra worker")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--terms", default=",".join(TERMS),
                        help="terms to fit (the others stay 0)")  # fmt: skip
    args = parser.parse_args()
    terms = tuple(args.terms.split(","))
    runs = usable_runs(args.shared)
    print(f"{len(runs)} runs")
    zero = dict.fromkeys(TERMS, 0.0)
    base = np.median(np.abs(tpot_errors(runs, zero)))
    print(f"no host overhead: TPOT error median |{base:.1f}| %")
    held = []
    for workload in sorted({r["workload"] for r in runs}):
        train = [r for r in runs if r["workload"] != workload]
        test = [r for r in runs if r["workload"] == workload]
        theta = fit(train, args.rounds, terms)
        errors = tpot_errors(test, theta)
        held.extend(errors)
        print(f"held out {workload} ({len(test)} runs): fit {describe(theta)}; TPOT error "
              f"median |{np.median(np.abs(errors)):.1f}| %, signed "
              f"{', '.join(f'{e:+.1f}' for e in errors)}")  # fmt: skip
    print(f"leave-one-workload-out TPOT error: median |{np.median(np.abs(held)):.1f}| %")
    theta = fit(runs, args.rounds, terms)
    errors = tpot_errors(runs, theta)
    print(f"all runs: fit {describe(theta)} ({theta}); TPOT error median "
          f"|{np.median(np.abs(errors)):.1f}| % (in sample)")  # fmt: skip


if __name__ == "__main__":
    main()
