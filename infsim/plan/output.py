"""A finished plan as a table: one row per candidate, ranked, with the Pareto front; and
`plan.parquet`.

Ranking: candidates that meet the SLO first, by $/hour, then p99 TTFT, TPOT and the
candidate's name (a total order, so equal inputs give an identical file). `pareto` marks
the SLO-meeting candidates that no other SLO-meeting candidate beats on $/hour, p99 TTFT
and p99 TPOT at once. Nothing of the machine (wall times, worker pids) is in the table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from infsim.plan.job import CandidateState, PlanRun
from infsim.plan.search import FOUND, LATENCY_BOUND, MAX_REPLICAS
from infsim.sweep.store import write_atomic

PUBLIC_COLUMNS = (
    "gpu",
    "tensor_parallel",
    "weight_precision",
    "replicas",
    "meets_slo",
    "usd_per_hour",
    "usd_per_million_output_tokens",
    "headroom_rate_per_s",
    "ttft_p99_s",
    "tpot_p99_s",
)
"""The columns of plan.parquet that are public interface (issue 16). `replicas` is the
fewest replicas meeting the SLO (null when none does); the costs and p99s are those of
`replicas_probed` replicas: the answer, or for a candidate that misses, the largest count
probed (how close it came)."""

COLUMNS = (
    "rank",
    *PUBLIC_COLUMNS,
    "pareto",
    "replicas_probed",
    "e2e_p99_s",
    "num_gpus",
    "target_rate_per_s",
    "headroom_capped",
    "calibration",
    "status",
    "note",
    "num_evaluations",
    "point_key",
)
SCHEMA = pa.schema(
    [
        ("rank", pa.int64()),
        ("gpu", pa.string()),
        ("tensor_parallel", pa.int64()),
        ("weight_precision", pa.string()),
        ("replicas", pa.int64()),
        ("meets_slo", pa.bool_()),
        ("usd_per_hour", pa.float64()),
        ("usd_per_million_output_tokens", pa.float64()),
        ("headroom_rate_per_s", pa.float64()),
        ("ttft_p99_s", pa.float64()),
        ("tpot_p99_s", pa.float64()),
        ("pareto", pa.bool_()),
        ("replicas_probed", pa.int64()),
        ("e2e_p99_s", pa.float64()),
        ("num_gpus", pa.int64()),
        ("target_rate_per_s", pa.float64()),
        ("headroom_capped", pa.bool_()),
        ("calibration", pa.string()),
        ("status", pa.string()),
        ("note", pa.string()),
        ("num_evaluations", pa.int64()),
        ("point_key", pa.string()),
    ]
)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool | str):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _note(state: CandidateState, run: PlanRun) -> tuple[str, str]:
    """(status, note): found / skipped / latency_bound / max_replicas / failed, in words."""
    if state.skipped is not None:
        return "skipped", state.skipped
    search = state.replicas
    largest = max(r for r, _ in search.probes)
    if search.stop == FOUND:
        return "ok", ""
    if search.stop == LATENCY_BOUND:
        return search.stop, (
            f"misses the SLO at {largest} replicas and doubling replicas no longer lowers "
            "its p99s: its latency floor at this load is above the SLO"
        )
    if search.stop == MAX_REPLICAS:
        return search.stop, f"misses the SLO even at --max-replicas {largest}"
    error = next((p.error for _, p in search.probes if p.error), "")
    return "failed", f"a point failed to run: {error}"[:300]


def candidate_row(state: CandidateState, run: PlanRun) -> dict[str, Any]:
    c = state.candidate
    status, note = _note(state, run)
    row = state.chosen_row() or {}
    found = state.replicas is not None and state.replicas.stop == FOUND
    head = state.headroom
    headroom = capped = None
    if found and head is not None:
        headroom = round(head.scale * run.settings.target_rate_per_s, 9)
        capped = bool(head.capped)
        if capped:
            note = (
                f"meets the SLO up to the largest rate probed ({headroom:g}/s); headroom is higher"
            )
    return {
        "gpu": c.gpu,
        "tensor_parallel": c.tensor_parallel,
        "weight_precision": c.weight_precision,
        "replicas": state.replicas.replicas if found else None,
        "meets_slo": bool(found),
        "usd_per_hour": _number(row.get("cost.usd_per_hour")),
        "usd_per_million_output_tokens": _number(row.get("cost.usd_per_million_output_tokens")),
        "headroom_rate_per_s": headroom,
        "ttft_p99_s": _number(row.get("latency_s.ttft.p99")),
        "tpot_p99_s": _number(row.get("latency_s.tpot.p99")),
        "replicas_probed": _probed(state),
        "e2e_p99_s": _number(row.get("latency_s.e2e.p99")),
        "num_gpus": row.get("deployment.num_gpus"),
        "target_rate_per_s": run.settings.target_rate_per_s,
        "headroom_capped": capped,
        "calibration": row.get("calibration.name"),
        "status": status,
        "note": note,
        "num_evaluations": state.num_evaluations,
        "point_key": row.get("key"),
    }


def _probed(state: CandidateState) -> int | None:
    if state.replicas is None or not state.replicas.probes:
        return None
    return state.replicas.replicas or max(r for r, _ in state.replicas.probes)


def pareto_flags(frame: pd.DataFrame) -> list[bool]:
    """SLO-meeting rows not dominated on ($/hour, p99 TTFT, p99 TPOT) by another one."""
    cols = ["usd_per_hour", "ttft_p99_s", "tpot_p99_s"]
    ok = [
        i
        for i in range(len(frame))
        if frame["meets_slo"].iloc[i] and frame[cols].iloc[i].notna().all()
    ]
    values = {i: tuple(float(frame[c].iloc[i]) for c in cols) for i in ok}
    flags = [False] * len(frame)
    for i in ok:
        dominated = any(
            all(a <= b for a, b in zip(values[j], values[i], strict=True))
            and values[j] != values[i]
            for j in ok
            if j != i
        )
        flags[i] = not dominated
    return flags


def plan_table(run: PlanRun) -> pd.DataFrame:
    """One row per candidate, ranked (module docstring)."""
    rows = [candidate_row(s, run) for s in run.states]
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("rank", "pareto")])
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            not rows[i]["meets_slo"],
            rows[i]["status"] == "skipped",
            _inf(rows[i]["usd_per_hour"]),
            _inf(rows[i]["ttft_p99_s"]),
            _inf(rows[i]["tpot_p99_s"]),
            rows[i]["gpu"],
            rows[i]["tensor_parallel"],
            rows[i]["weight_precision"],
        ),
    )
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    frame.insert(COLUMNS.index("pareto"), "pareto", pareto_flags(frame))
    return frame


def _inf(value: Any) -> float:
    number = _number(value)
    return math.inf if number is None else number


def load_curves(run: PlanRun, table: pd.DataFrame, limit: int = 6) -> pd.DataFrame:
    """p99 TTFT and TPOT against the arrival rate, from the headroom probes, for the
    SLO-meeting candidates on the Pareto front or among the `limit` cheapest (one line per
    candidate in the report; more would not be readable)."""
    chosen = table[table["meets_slo"] & (table["pareto"] | (table["rank"] <= limit))]
    ranks = {(r.gpu, r.tensor_parallel, r.weight_precision): r.rank for r in chosen.itertuples()}
    rows = []
    for state in run.states:
        c = state.candidate
        rank = ranks.get((c.gpu, c.tensor_parallel, c.weight_precision))
        if rank is None or state.replicas is None:
            continue
        points = {1.0: state.rows.get(("replicas", state.replicas.replicas))}
        points |= {x: row for (kind, x), row in state.rows.items() if kind == "rate"}
        for scale, row in sorted(points.items()):
            if row is None:
                continue
            rows.append({
                "rank": rank,
                "label": f"#{rank} {state.replicas.replicas}× {c.label()}",
                "rate_per_s": scale * run.settings.target_rate_per_s,
                "ttft_p99_s": _number(row.get("latency_s.ttft.p99")),
                "tpot_p99_s": _number(row.get("latency_s.tpot.p99")),
                "meets_slo": run.target.met(row),
            })  # fmt: skip
    return pd.DataFrame(rows).sort_values(["rank", "rate_per_s"]) if rows else pd.DataFrame()


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """plan.parquet, written whole or not at all, with a fixed schema (no pandas metadata,
    so identical plans give identical bytes)."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomic(path, sink.getvalue().to_pybytes())
