"""Fit the per-step engine overhead from measured decode steps.

The kernel tables price operations; a real engine also spends time per step outside them
(scheduling, Python, input preparation, sampling glue, launches). Given measured decode
step times for known batch compositions — batch size and mean KV length, e.g. TPOT from
closed-loop runs at fixed lengths (`steps_from_bench` reads them straight from the
benchmark's result), or vLLM's profiler step annotations — the overhead of each
measurement is what remains after the calibrated ops:

    overhead(b) = measured_step(b, kv) − Σ ops(b, kv)

These residuals become `step_overhead` rows of the calibration, which the calibrated cost
model fits by least squares (`infsim/cost/calibrated.py`): fixed + per sequence from decode
steps, and, when prefill steps are measured too (a CSV row with `query_len` > 1: each of
its `batch_size` sequences computes `query_len` new tokens, e.g. the engine's own prefill
time of unqueued requests), + per prefill chunk + per prefill token.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from infsim.core.batch import Batch, batch_of
from infsim.cost.base import CostModel
from infsim.errors import InputError
from infsim.validation.formats import load_measured
from infsim.validation.replay import successful_rows

MEASURED_COLUMNS = ("batch_size", "kv_len", "step_time_s")
OPTIONAL_COLUMNS = ("query_len",)
NOISE_FRACTION = 0.05
"""How far (relative) the ops may exceed a measured prefill step before it is refused."""
FIXED_LENGTH_TOLERANCE = 0.1
"""Largest relative spread (max − min over the mean) of prompt or output lengths for which
a closed-loop run's waves stay in step, so that its TPOT is one decode step's time."""


def read_steps(path: Path) -> pd.DataFrame:
    """Measured steps of a CSV file (`read_measured`) or a benchmark result
    (`steps_from_bench`, any other file)."""
    return read_measured(path) if path.suffix.lower() == ".csv" else steps_from_bench(path)


def holds_known_steps(path: Path) -> bool:
    """Whether `path` gives decode steps directly: a CSV of steps, or a closed-loop run with
    fixed lengths (its TPOT is one step at batch C). Anything else is fitted by replay
    (`infsim.calibration.replay_fit`)."""
    if path.suffix.lower() == ".csv":
        return True
    measured = load_measured(path, "auto", None)
    if measured.max_concurrency is None or measured.requests is None:
        return False
    requests, _ = successful_rows(measured, None)
    return all(_spread(v) <= FIXED_LENGTH_TOLERANCE
               for v in (requests.num_input_tokens, requests.num_output_tokens))  # fmt: skip


def _spread(values: np.ndarray) -> float:
    return float((values.max() - values.min()) / values.mean())


def steps_from_bench(path: Path) -> pd.DataFrame:
    """One decode step from a closed-loop benchmark with fixed lengths (vllm bench serve
    --max-concurrency C, random dataset): its C requests start together, stay in step, and
    decode as one batch, so the median TPOT is the step time at batch min(C, requests) and
    mean context `input + output / 2`."""
    measured = load_measured(path, "auto", None)
    if measured.max_concurrency is None:
        raise InputError(
            f"{path}: the benchmark states no client concurrency limit; only closed-loop "
            "runs (vllm bench serve --max-concurrency C) keep a known batch decoding"
        )
    requests, _ = successful_rows(measured, None)
    lengths = {"prompt": requests.num_input_tokens, "output": requests.num_output_tokens}
    for what, values in lengths.items():
        if _spread(values) > FIXED_LENGTH_TOLERANCE:
            raise InputError(
                f"{path}: {what} lengths vary from {values.min()} to {values.max()} "
                f"tokens; the overhead fit needs fixed lengths (spread at most "
                f"{FIXED_LENGTH_TOLERANCE:.0%}) so that requests decode in step"
            )
    tpot_s = requests.tpot_s()
    if not tpot_s.size:
        raise InputError(f"{path}: no request produced more than one token: no decode steps")
    return pd.DataFrame(
        {
            "batch_size": [float(min(measured.max_concurrency, requests.num_requests))],
            "kv_len": [requests.num_input_tokens.mean() + requests.num_output_tokens.mean() / 2],
            "step_time_s": [float(np.median(tpot_s))],
        }
    )


def read_measured(path: Path) -> pd.DataFrame:
    """CSV with batch_size, kv_len (context per request after the step), step_time_s, and
    optionally query_len (new tokens per request in the step; 1, a decode step, if absent)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as err:
        raise InputError(f"{path}: cannot read measured steps: {err}") from None
    missing = [c for c in MEASURED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; expected "
            f"{', '.join(MEASURED_COLUMNS)}"
        )
    if frame.empty:
        raise InputError(f"{path}: no measured steps")
    columns = [*MEASURED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in frame.columns)]
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.index[(values.isna() | (values <= 0)).any(axis=1)]
    if len(bad):
        raise InputError(
            f"{path}: row {int(bad[0]) + 2}: {', '.join(columns)} must be positive numbers"
        )
    if "query_len" in values and (values["query_len"] > values["kv_len"]).any():
        row = int(values.index[values["query_len"] > values["kv_len"]][0]) + 2
        raise InputError(
            f"{path}: row {row}: query_len (new tokens) exceeds kv_len (the context after "
            "the step, new tokens included)"
        )
    return values


def decode_batch(batch_size: int, kv_len: int, query_len: int = 1) -> Batch:
    """`batch_size` requests each computing `query_len` new tokens (1: a decode) over
    `kv_len − query_len` cached ones."""
    return batch_of([(query_len, kv_len - query_len)] * batch_size)


def overhead_rows(measured: pd.DataFrame, cost_model: CostModel) -> pd.DataFrame:
    """`step_overhead` rows: measured step minus the cost model's ops (overhead excluded);
    prefill rows keep their `query_len`."""
    rows = []
    query_lens = measured["query_len"] if "query_len" in measured else [1] * len(measured)
    for r, q in zip(measured.itertuples(), query_lens, strict=True):
        q = 1 if pd.isna(q) else round(q)  # decode steps (bench TPOT) state no query_len
        ops = cost_model.op_times_s(decode_batch(int(r.batch_size), round(r.kv_len), q))
        predicted = sum(v for k, v in ops.items() if k != "overhead")
        residual = r.step_time_s - predicted
        rows.append(
            {
                "op": "step_overhead",
                "batch_size": int(r.batch_size),
                "query_len": q if q > 1 else None,
                "time_s": residual,
                "variant": "fitted-residual",
            }
        )
    out = pd.DataFrame(rows)
    # A residual below zero is within noise for long prefill steps (the overhead is a few
    # % of them); ops slower than a measured step by more than NOISE_FRACTION of it, or any
    # at all for a decode step, mean the table describes another engine.
    measured_s = measured["step_time_s"].to_numpy(float)
    limit = np.where(out["query_len"].notna(), -NOISE_FRACTION * measured_s, 0.0)
    too_slow = out["time_s"].to_numpy(float) <= limit
    if too_slow.any():
        worst = out[too_slow].loc[out.loc[too_slow, "time_s"].idxmin()]
        raise InputError(
            f"the calibrated ops alone ({-worst.time_s * 1e3:.3f} ms too slow at batch "
            f"{worst.batch_size}) exceed a measured step: the table does not describe this "
            "engine; check the device, dtype and thread count of the calibration"
        )
    return out
