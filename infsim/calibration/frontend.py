"""Fit the front end's per-request latency from live TTFT.

A client's TTFT is the front end (HTTP, API server, tokenisation, IPC to the engine core,
then detokenisation and streaming of the first token back) plus queueing plus the engine
steps up to the first token. For requests that never queue — a closed loop with one request
in flight — the simulator predicts the engine part, and what remains of each measured TTFT
is the front end:

    frontend_i = measured_ttft_i − predicted_ttft_i       (front end off in the prediction)

These residuals become `frontend` rows of the calibration (num_tokens = the prompt's
tokens), fitted as fixed + per prompt token: the API server's request path plus the first
token's way back at one in flight (`infsim.frontend.costs.resolve_costs` takes the way
back out again, so a scenario run with the table prices each part where it happens).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from infsim.api import run_resolved
from infsim.calibration.bench import check_one_in_flight
from infsim.core.fit import line_fit
from infsim.errors import InputError
from infsim.scenario.resolve import ResolvedScenario
from infsim.scenario.schema import FrontendSpec
from infsim.validation.formats import load_measured
from infsim.validation.measured import MeasuredRequests
from infsim.validation.replay import replay_trace, successful_rows
from infsim.validation.validate import closed_loop


def engine_ttft(path: Path, resolved: ResolvedScenario) -> tuple[MeasuredRequests, np.ndarray]:
    """A one-in-flight benchmark's successful requests and the TTFT `resolved` predicts for
    each when replaying them (`InputError` for any other kind of run)."""
    measured = load_measured(path, "auto", None)
    if not measured.replayable:
        raise InputError(f"{path}: cannot be replayed: {measured.why_not_replayable()}")
    check_one_in_flight(
        measured,
        path,
        "only runs with one request in flight (vllm bench serve --max-concurrency 1) "
        "measure TTFT without queueing, which the fit needs",
    )
    requests, _ = successful_rows(measured, None)
    one, _ = closed_loop(measured, without_frontend(resolved))
    trace = replay_trace(requests, str(path), send_at_once=True)
    return requests, run_resolved(one, trace).requests.column("ttft_s").to_numpy()


def without_frontend(resolved: ResolvedScenario) -> ResolvedScenario:
    """`resolved` with an API server that costs nothing: the engine's part of TTFT alone."""
    zero = FrontendSpec(request_s=0.0, request_per_prompt_token_s=0.0, output_per_step_s=0.0,
                        output_per_token_s=0.0)  # fmt: skip
    return replace(resolved, scenario=resolved.scenario.model_copy(update={"frontend": zero}))


def frontend_rows(
    bench_paths: list[Path], resolved: ResolvedScenario
) -> tuple[pd.DataFrame, dict[Path, int]]:
    """`frontend` rows — the median residual per distinct prompt length over all requests of
    the benchmarks (robust to the odd request that a noisy machine served faster than
    predicted) — and the number of requests used from each benchmark (`resolved` must price
    the engine without a front end: a calibration without `frontend` rows)."""
    residuals: dict[int, list[float]] = {}
    counts: dict[Path, int] = {}
    for path in bench_paths:
        requests, predicted = engine_ttft(path, resolved)
        residual = requests.ttft_s - predicted
        counts[path] = len(residual)
        for tokens, time_s in zip(requests.num_input_tokens, residual, strict=True):
            residuals.setdefault(int(tokens), []).append(float(time_s))
    rows = pd.DataFrame(
        [{"op": "frontend", "num_tokens": tokens, "time_s": float(np.median(values)),
          "variant": f"median ttft residual of {len(values)} requests"}
         for tokens, values in sorted(residuals.items())]
    )  # fmt: skip
    bad = rows[rows["time_s"] <= 0]
    if not bad.empty:
        worst = bad.loc[bad["time_s"].idxmin()]
        raise InputError(
            f"{', '.join(map(str, bench_paths))}: at {worst.num_tokens} prompt tokens the "
            f"predicted engine TTFT alone exceeds the measured TTFT by "
            f"{-worst.time_s * 1e3:.3f} ms (median): the calibration is slower than this "
            "engine; refit its step overhead first (infsim calibrate overhead)"
        )
    return rows, counts


def summary(rows: pd.DataFrame) -> tuple[float, float]:
    """(fixed s, s per prompt token) of the line the cost model will use."""
    return line_fit(rows["num_tokens"].to_numpy(float), rows["time_s"].to_numpy(float))
