"""Step overhead from runs whose batches are not known: replay them, and regress.

A closed-loop run with fixed lengths decodes one known batch, so its TPOT is one step's
time (`overhead.steps_from_bench`). An open-loop run (Poisson arrivals, mixed lengths) or
an in-process run does not: each request decoded inside batches that grew and shrank and
shared steps with other requests' prefills. What is known is each request's decode time
(E2E − TTFT, the time from its first token to its last). The simulator knows the rest:
replaying the run's own arrivals and lengths gives every request's decode steps, their
widths, and the prompt chunks of other requests that shared them. With the per-step
overhead `fixed + per_seq · width + per_prefill_token · (batched tokens − width)`, a
request's decode time is

    decode_i = kernels_i + fixed · steps_i + per_seq · Σ widths_i + per_prefill_token · Σ extra_i

so the measured minus the predicted decode time of each request is linear in the change
of the terms (`decode_exposure`). A least-squares step moves them; the replay is repeated
with them (the batches depend on the step time) until they settle (`fit_by_replay`). Each
replay prices the overhead from `step_overhead` rows that encode the terms (`theta_rows`),
through the same row fit the calibrated cost model uses afterwards. The front end is
switched off in the replay: TTFT and E2E then end on step boundaries, and the decode
window has no egress.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from infsim.errors import InputError
from infsim.scenario.resolve import ResolvedScenario

MAX_ROUNDS = 25
MAX_HALVINGS = 8
TOLERANCE_S = 1e-6
"""Stop when a round moves the mean step's overhead by less than this (seconds)."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """Per request (index-aligned with the simulated requests given), over its decode
    steps: how many, the sum of their widths (sequences), the sum of their prefill tokens
    beyond one per sequence (batched − sequences: the chunks of others' prompts that shared
    them), and the simulated decode time (s)."""

    steps: np.ndarray
    seq_steps: np.ndarray
    prefill_tokens: np.ndarray
    decode_s: np.ndarray


def decode_exposure(requests: pd.DataFrame, timeline: pa.Table) -> Exposure:
    """Each finished request's decode steps: the steps of its replica that ended after its
    first token and no later than its last (`timeline` rows; a fast-forwarded row of k steps
    counts k, each of its width)."""
    names = ["replica_id", "end_s", "num_steps", "num_seqs", "num_batched_tokens"]
    tl = timeline.select(names).to_pandas()
    out = np.zeros((3, len(requests)))
    first = requests["first_token_s"].to_numpy(float)
    last = requests["finish_s"].to_numpy(float)
    replica = requests["replica_id"].to_numpy()
    for rid, rows in tl.groupby("replica_id", sort=False):
        rows = rows.sort_values("end_s", kind="stable")
        ends = rows["end_s"].to_numpy(float)
        k = rows["num_steps"].to_numpy(float)
        seqs = rows["num_seqs"].to_numpy(float)
        extra = rows["num_batched_tokens"].to_numpy(float) - seqs
        mine = np.flatnonzero(replica == rid)
        lo = np.searchsorted(ends, first[mine], side="right")
        hi = np.searchsorted(ends, last[mine], side="right")
        for i, per_row in enumerate((k, k * seqs, extra)):  # runs: batched = seqs per step
            cum = np.concatenate([[0.0], np.cumsum(per_row)])
            out[i, mine] = cum[hi] - cum[lo]
    return Exposure(out[0], out[1], out[2], last - first)


TERMS = ("fixed_s", "per_seq_s", "per_prefill_token_s")


def theta_rows(
    theta: dict[str, float], query_lens: tuple[int, int], widths: tuple[int, int] = (1, 2)
) -> pd.DataFrame:
    """`step_overhead` rows that `infsim.cost.overhead.fit_overhead` turns back into exactly
    `theta`: decode rows at two batch widths, and one-sequence prefill rows at two chunk
    lengths q costing fixed + per_seq + per_prefill_token · (q − 1)."""
    fixed, per_seq, per_token = (theta[t] for t in TERMS)
    (q1, q2), (b1, b2) = query_lens, widths
    return pd.DataFrame({
        "op": "step_overhead",
        "batch_size": [b1, b2, 1, 1],
        "query_len": [None, None, q1, q2],
        "time_s": [fixed + per_seq * b1, fixed + per_seq * b2,
                   fixed + per_seq + per_token * (q1 - 1), fixed + per_seq + per_token * (q2 - 1)],
        "variant": "fitted-replay",
    })  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReplayFit:
    theta: dict[str, float]
    rows: pd.DataFrame  # step_overhead rows encoding `theta` (see fit_by_replay)
    num_rounds: int
    num_requests: int


Replay = Callable[[pd.DataFrame], tuple[pd.DataFrame, pa.Table]]
"""step_overhead rows → (simulated requests table, timeline), in measured-request order."""


def fit_by_replay(
    measured_decode_s: np.ndarray, replay: Replay, theta: dict[str, float],
    query_lens: tuple[int, int],
) -> ReplayFit:  # fmt: skip
    """Fixed-point least squares of the overhead terms (see the module doc), starting from
    `theta`. `measured_decode_s[i]`: request i's measured E2E − TTFT (NaN where unknown or
    where it had one output token). A term whose feature does not vary (one batch width all
    along; no prefill sharing a decode step) keeps its starting value."""
    theta = dict(theta)
    state = _replay_state(measured_decode_s, replay, theta, query_lens)
    num_rounds = 0
    while num_rounds < MAX_ROUNDS:
        num_rounds += 1
        delta = _gauss_newton_step(state, theta)
        # Backtrack: the step ignores that the batches grow with the step time, so near
        # saturation a full step can overshoot into overload; halve it until the squared
        # residual falls (a replay per try).
        for _ in range(MAX_HALVINGS):
            trial = {t: max(theta[t] + delta[t], 0.0) for t in TERMS}
            candidate = _replay_state(measured_decode_s, replay, trial, query_lens)
            if candidate.sse <= state.sse:
                break
            delta = {t: d / 2 for t, d in delta.items()}
        else:
            break  # no step improves: theta is the fit
        moved = _per_step_change_s(state, trial, theta)
        theta, state = trial, candidate
        if moved < TOLERANCE_S:
            break
    exp, use = state.exposure, state.use
    # The fit as rows: decode rows at the run's 10th and 90th percentile of mean batch
    # widths (the range it measured) and the two prefill rows; the cost model's row fit
    # gives back exactly `theta`.
    widths = exp.seq_steps[use] / exp.steps[use]
    lo, hi = (max(round(float(w)), 1) for w in np.percentile(widths, [10, 90]))
    rows = theta_rows(theta, query_lens, (lo, hi if hi > lo else lo + 1))
    return ReplayFit(theta, rows, num_rounds, int(use.sum()))


@dataclass(frozen=True, slots=True)
class _State:
    theta: dict[str, float]
    exposure: Exposure
    use: np.ndarray  # requests in the fit
    residual: np.ndarray  # measured − simulated decode time of those (s)

    @property
    def sse(self) -> float:
        return float(np.sum(self.residual**2))


def _replay_state(
    measured_decode_s: np.ndarray, replay: Replay, theta: dict[str, float],
    query_lens: tuple[int, int],
) -> _State:  # fmt: skip
    requests, timeline = replay(theta_rows(theta, query_lens))
    if len(requests) != len(measured_decode_s):
        raise InputError(f"the replay simulated {len(requests)} requests but the run "
                         f"measured {len(measured_decode_s)}")  # fmt: skip
    exp = decode_exposure(requests, timeline)
    use = np.isfinite(measured_decode_s) & (exp.steps > 0)
    use &= (requests["status"] == "finished").to_numpy()
    if use.sum() < 3:
        raise InputError(
            f"only {int(use.sum())} replayed requests decoded more than one token; the "
            "overhead fit needs at least 3"
        )
    return _State(dict(theta), exp, use, measured_decode_s[use] - exp.decode_s[use])


def _per_step_change_s(state: _State, new: dict[str, float], old: dict[str, float]) -> float:
    """How much the change of the terms moves the overhead of the run's mean decode step."""
    exp, use = state.exposure, state.use
    steps = exp.steps[use].sum()
    per_step = {"fixed_s": 1.0, "per_seq_s": exp.seq_steps[use].sum() / steps,
                "per_prefill_token_s": exp.prefill_tokens[use].sum() / steps}  # fmt: skip
    return sum(abs(new[t] - old[t]) * per_step[t] for t in TERMS)


def _gauss_newton_step(state: _State, theta: dict[str, float]) -> dict[str, float]:
    """Least-squares change of the terms whose feature varies between requests (per step);
    a term that would go below zero is pinned at 0 and the others refitted."""
    exp, use = state.exposure, state.use
    steps = exp.steps[use]
    features = {"fixed_s": steps, "per_seq_s": exp.seq_steps[use],
                "per_prefill_token_s": exp.prefill_tokens[use]}  # fmt: skip
    free = [t for t in TERMS if t == "fixed_s" or np.ptp(features[t] / steps) > 0.5]
    residual = state.residual
    delta = dict.fromkeys(TERMS, 0.0)
    while free:
        x = np.column_stack([features[t] for t in free])
        step = dict(zip(free, np.linalg.lstsq(x, residual, rcond=None)[0], strict=True))
        negative = [t for t in free if theta[t] + step[t] < 0]
        if not negative:
            delta.update({t: float(v) for t, v in step.items()})
            break
        for t in negative:  # a cost below zero: pin the term at 0, refit the others
            residual = residual + features[t] * theta[t]
            delta[t] = -theta[t]
            free.remove(t)
    return delta


def replay_rows(path: Path, bare: ResolvedScenario) -> pd.DataFrame:
    """`step_overhead` rows of one replayable run (an open-loop or closed-loop benchmark
    with per-request start times, or an in-process run's per-request timestamps), fitted by
    replaying it through `bare` (a scenario whose table has no `step_overhead` rows),
    starting from its resolved default overhead."""
    from infsim.api import run_resolved
    from infsim.calibration.frontend import without_frontend
    from infsim.validation.formats import load_measured
    from infsim.validation.replay import replay_trace, successful_rows
    from infsim.validation.validate import all_at_once, closed_loop

    measured = load_measured(path, "auto", None)
    if not measured.replayable:
        raise InputError(
            f"{path}: cannot fit the step overhead from it: {measured.why_not_replayable()}. "
            "Give a benchmark with per-request start times (vllm bench serve "
            "--save-detailed), an in-process run's per-request timestamps, a closed-loop run "
            "with fixed lengths, or a CSV of measured steps"
        )
    rows, _ = successful_rows(measured, None)
    resolved, _ = closed_loop(measured, without_frontend(bare))
    trace = replay_trace(rows, str(path), send_at_once=all_at_once(measured))
    decode_s = np.where(rows.num_output_tokens > 1, rows.e2e_s - rows.ttft_s, np.nan)

    ops = bare.calibration_rows
    if ops is None:
        raise InputError("the step overhead is fitted against a calibration table; the "
                         "scenario uses the roofline")  # fmt: skip
    prompts = rows.num_input_tokens
    query_lens = _two_lengths(prompts, resolved.scenario.engine.max_num_batched_tokens)

    def replay(overhead_rows: pd.DataFrame) -> tuple[pd.DataFrame, pa.Table]:
        rs = dataclasses.replace(
            resolved, calibration_rows=pd.concat([ops, overhead_rows], ignore_index=True)
        )
        result = run_resolved(rs, trace)
        requests = result.requests.to_pandas().sort_values("request_id", kind="stable")
        return requests.reset_index(drop=True), result.timeline

    start = resolved.step_overhead
    theta = {"fixed_s": start.fixed_s if start is not None else 0.0,
             "per_seq_s": start.per_seq_s if start is not None else 0.0,
             "per_prefill_token_s": 0.0}  # fmt: skip
    return fit_by_replay(decode_s, replay, theta, query_lens).rows


def _two_lengths(prompts: np.ndarray, chunk_limit: int | None) -> tuple[int, int]:
    """Two prefill chunk lengths inside the run's range (quartiles of its prompts, capped
    at the step's token budget) for the rows that carry the per-prefill-token term."""
    cap = chunk_limit or int(prompts.max())
    q1, q2 = (int(min(max(v, 2), cap)) for v in np.percentile(prompts, [25, 75]))
    return (q1, q2) if q2 > q1 else (q1, q1 + 1)
