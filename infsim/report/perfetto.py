"""A run as a Chrome / Perfetto trace (the Trace Event JSON format), to look at what
happened: open it in https://ui.perfetto.dev or chrome://tracing.

    process "replicas"  one track per replica: each engine step (or fast-forwarded run of
                        identical decode steps) as a slice, with its tokens, batch width,
                        running and waiting requests and KV use; counters of running,
                        waiting and KV use per replica
    process "requests"  one async track per request: waiting (arrival → first scheduled),
                        prefill (→ first token), decode (→ finish); rejected and failed
                        requests as an instant with their reason

Times are simulated microseconds from t = 0. A long run is cut to its first
`max_requests` requests (by arrival) and the steps up to the last of them ending; the
caller says so (`TraceExport.cut`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

REPLICAS_PID, REQUESTS_PID = 1, 2
US = 1e6


@dataclass(frozen=True)
class TraceExport:
    trace: dict[str, Any]
    num_requests: int  # requests in the trace
    num_steps: int  # timeline rows in the trace
    cut: bool  # False: the whole run


def _columns(table: pa.Table) -> dict[str, np.ndarray]:
    return {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names}


def _meta(pid: int, name: str) -> dict[str, Any]:
    return {"ph": "M", "pid": pid, "tid": 0, "name": "process_name", "args": {"name": name}}


def chrome_trace(requests: pa.Table, timeline: pa.Table, max_requests: int) -> TraceExport:
    """The trace of the first `max_requests` requests and the steps until they ended."""
    req = _columns(requests)
    order = np.argsort(req["arrival_s"], kind="stable")[:max_requests]
    cut = len(order) < requests.num_rows
    ends = np.concatenate([req["finish_s"][order], req["arrival_s"][order]])
    horizon_s = float(np.nanmax(ends)) if cut and ends.size else math.inf
    steps = _columns(timeline)
    keep = steps["start_s"] <= horizon_s
    events = [_meta(REPLICAS_PID, "replicas"), _meta(REQUESTS_PID, "requests")]
    for rid in sorted(set(steps["replica_id"][keep].tolist())):
        events.append({"ph": "M", "pid": REPLICAS_PID, "tid": rid, "name": "thread_name",
                       "args": {"name": f"replica {rid}"}})  # fmt: skip
    for i in np.flatnonzero(keep).tolist():
        events.extend(_step_events(steps, i))
    for i in order.tolist():
        events.extend(_request_events(req, i))
    trace = {"traceEvents": events, "displayTimeUnit": "ms",
             "otherData": {"source": "infsim (simulated time)"}}  # fmt: skip
    return TraceExport(trace, len(order), int(keep.sum()), cut)


def _step_events(s: dict[str, np.ndarray], i: int) -> list[dict[str, Any]]:
    rid = int(s["replica_id"][i])
    start, end = float(s["start_s"][i]), float(s["end_s"][i])
    k = int(s["num_steps"][i])
    name = "step" if k == 1 else f"decode run ×{k}"
    args = {
        "num_steps": k,
        "num_batched_tokens": int(s["num_batched_tokens"][i]),
        "num_seqs": int(s["num_seqs"][i]),
        "num_running": int(s["num_running"][i]),
        "num_waiting": int(s["num_waiting"][i]),
        "num_preempted": int(s["num_preempted"][i]),
        "kv_usage": float(s["kv_usage"][i]),
    }
    counters = {"running": args["num_running"], "waiting": args["num_waiting"],
                "kv_usage_pct": round(100.0 * args["kv_usage"], 3)}  # fmt: skip
    return [
        {"ph": "X", "pid": REPLICAS_PID, "tid": rid, "name": name, "ts": start * US,
         "dur": (end - start) * US, "args": args},
        {"ph": "C", "pid": REPLICAS_PID, "tid": rid, "name": f"replica {rid}",
         "ts": end * US, "args": counters},
    ]  # fmt: skip


def _request_events(r: dict[str, np.ndarray], i: int) -> list[dict[str, Any]]:
    rid = int(r["request_id"][i])
    base = {"pid": REQUESTS_PID, "tid": 0, "cat": "request", "id": rid}
    arrival = float(r["arrival_s"][i])
    if r["status"][i] != "finished":
        reason = r["reject_reason"][i] or r["status"][i]
        end = float(r["finish_s"][i]) if np.isfinite(r["finish_s"][i]) else arrival
        return [{**base, "ph": "n", "name": f"request {rid} {r['status'][i]}", "ts": end * US,
                 "args": {"reason": str(reason), "arrival_s": arrival}}]  # fmt: skip
    marks = (
        ("waiting", arrival, float(r["first_scheduled_s"][i])),
        ("prefill", float(r["first_scheduled_s"][i]), float(r["first_token_s"][i])),
        ("decode", float(r["first_token_s"][i]), float(r["finish_s"][i])),
    )
    args = {
        "replica_id": int(r["replica_id"][i]),
        "prompt_tokens": int(r["num_prompt_tokens"][i]),
        "output_tokens": int(r["num_output_tokens"][i]),
        "cached_tokens": int(r["num_cached_tokens"][i]),
        "preemptions": int(r["num_preemptions"][i]),
        "ttft_s": float(r["ttft_s"][i]),
        "e2e_s": float(r["e2e_s"][i]),
    }
    events = [{**base, "ph": "b", "name": f"request {rid}", "ts": arrival * US, "args": args}]
    for name, start, end in marks:
        events.append({**base, "ph": "b", "name": name, "ts": start * US})
        events.append({**base, "ph": "e", "name": name, "ts": end * US})
    events.append({**base, "ph": "e", "name": f"request {rid}", "ts": float(r["finish_s"][i]) * US})
    return events
