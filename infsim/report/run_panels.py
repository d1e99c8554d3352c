"""The run report's figures over time (`html_run.py`): arrivals and throughput, TTFT per
window, requests on the engines and KV use aggregated over replicas, and, where they vary,
the fleet's replicas by state per pool and its $/h, and the KV-transfer queue of a
disaggregated run; all binned into about 60 windows, so any run plots as fast.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa

from infsim.report import plots
from infsim.report.read import RunFiles


def col(table: pa.Table, name: str, dtype=float) -> np.ndarray:
    if name not in table.column_names:
        return np.zeros(table.num_rows, dtype=dtype)
    return table.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _edges(span: float) -> tuple[np.ndarray, float]:
    """Window edges over [0, span] (the last window cut at the span) and the length."""
    w = plots.window_s(span)
    edges = np.arange(0.0, span, w)
    return np.append(edges, span), w


def _padded(edges: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and values, with the last window closed (for a step 'post' plot)."""
    return edges, np.append(y, y[-1] if y.size else np.nan)


def over_time(run: RunFiles, slo: dict[str, float | None], span: float) -> str:
    edges, w = _edges(span)
    widths = np.diff(edges)
    req = run.requests
    status = req.column("status").to_numpy(zero_copy_only=False).astype(str)
    done = status == "finished"
    arrival, finish, ttft = col(req, "arrival_s"), col(req, "finish_s"), col(req, "ttft_s")
    wl = f"{w:g} s windows"
    rate_series = [
        (
            *_padded(edges, np.histogram(arrival, edges)[0] / widths),
            "arrivals",
            {"color": "0.45", "lw": 1.0},
        ),
        (
            *_padded(edges, np.histogram(finish[done], edges)[0] / widths),
            "completed",
            {"color": "#1f77b4", "lw": 1.4},
        ),
    ]
    met = _slo_met(req, slo, done)
    if met is not None:
        rate_series.append(
            (
                *_padded(edges, np.histogram(finish[met], edges)[0] / widths),
                "completed within SLO",
                {"color": "#2ca02c", "lw": 1.0, "ls": "--"},
            )
        )
    if (~done).any():
        rate_series.append(
            (
                *_padded(edges, np.histogram(arrival[~done], edges)[0] / widths),
                "rejected or failed",
                {"color": "#d62728", "lw": 1.0},
            )
        )
    panels = [
        {"title": f"requests per second ({wl})", "ylabel": "requests/s", "series": rate_series}
    ]
    if done.any():
        bins = np.clip(np.floor(arrival[done] / w), 0, edges.size - 2)
        frame = pd.DataFrame({"bin": bins, "ttft": ttft[done] * 1e3})
        q = frame.groupby("bin")["ttft"].quantile([0.5, 0.99]).unstack()
        ys = {}
        for level in (0.5, 0.99):
            y = np.full(edges.size - 1, np.nan)
            idx = q.index.to_numpy().astype(int)
            keep = (idx >= 0) & (idx < y.size)
            y[idx[keep]] = q[level].to_numpy()[keep]
            ys[level] = y
        positive = ttft[done][ttft[done] > 0] * 1e3
        limit = slo.get("TTFT")
        panels.append(
            {
                "title": f"TTFT of the requests arriving in each window ({wl})",
                "ylabel": "TTFT (ms)",
                "series": [
                    (*_padded(edges, ys[0.99]), "p99", {"color": "#d62728", "lw": 1.3}),
                    (*_padded(edges, ys[0.5]), "p50", {"color": "#1f77b4", "lw": 1.0}),
                ],
                "hline": None if limit is None else (limit, f"SLO {plots.fmt_ms(limit)}"),
                "log": bool(positive.size and positive.max() > 30 * max(positive.min(), 1e-3)),
            }
        )
    if run.timeline.num_rows:
        panels.extend(_replica_panels(run, edges, w))
    if fleet_is_dynamic(run):
        panels.extend(_fleet_panels(run, span))
    if run.disaggregation_timeline is not None and run.disaggregation_timeline.num_rows:
        panels.append(_disagg_panel(run, edges, w))
    return plots.over_time(panels, span)


def _slo_met(req: pa.Table, slo: dict[str, float | None], done: np.ndarray):
    if all(v is None for v in slo.values()):
        return None
    ok = done.copy()
    for name, column in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("E2E", "e2e_s")):
        if slo.get(name) is not None:
            v = np.nan_to_num(col(req, column) * 1e3, nan=0.0 if column == "tpot_s" else np.inf)
            ok &= v <= slo[name]
    return ok


def _replica_panels(run: RunFiles, edges: np.ndarray, w: float) -> list[dict]:
    tl = run.timeline
    rid, start, end = col(tl, "replica_id", np.int64), col(tl, "start_s"), col(tl, "end_s")
    sums = {k: np.zeros(edges.size - 1) for k in ("num_running", "num_waiting")}
    kv_means = []
    for replica in np.unique(rid):
        mask = rid == replica
        s, e = start[mask], end[mask]
        for key in sums:
            area, _ = plots.time_mean(s, e, col(tl, key)[mask], edges)
            sums[key] += area / np.diff(edges)
        area, covered = plots.time_mean(s, e, col(tl, "kv_usage")[mask], edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            kv_means.append(np.where(covered > 0, area / covered, np.nan))
    replicas = np.unique(rid).size
    queue = [
        (*_padded(edges, sums["num_waiting"]), "waiting on replicas", {"color": "#d62728"}),
        (
            *_padded(edges, sums["num_running"]),
            "running (in a batch)",
            {"color": "#1f77b4", "lw": 0.9},
        ),
    ]
    gateway = _gateway(run, edges)
    if gateway is not None:
        queue.append((*_padded(edges, gateway), "queued at the gateway", {"color": "#ff7f0e"}))
    kv = np.vstack(kv_means) * 100
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kv_mean, kv_max = np.nanmean(kv, axis=0), np.nanmax(kv, axis=0)
    who = "one replica" if replicas == 1 else f"summed over the replicas ({replicas} in all)"
    kv_series = [
        (
            *_padded(edges, kv_mean),
            "mean over replicas" if replicas > 1 else "KV use",
            {"color": "#9467bd"},
        )
    ]
    if replicas > 1:
        kv_series.append(
            (
                *_padded(edges, kv_max),
                "busiest replica",
                {"color": "#9467bd", "lw": 0.8, "ls": "--"},
            )
        )
    return [
        {
            "title": f"requests on the engines ({who}; time-mean per {w:g} s window)",
            "ylabel": "requests",
            "series": queue,
        },
        {
            "title": f"KV cache in use (time-mean per {w:g} s window while stepping)",
            "ylabel": "KV blocks used (%)",
            "series": kv_series,
        },
    ]


def _gateway(run: RunFiles, edges: np.ndarray) -> np.ndarray | None:
    ft = run.fleet_timeline
    if ft is None or "num_gateway_queued" not in ft.column_names or not ft.num_rows:
        return None
    t, q = col(ft, "time_s"), col(ft, "num_gateway_queued")
    if not q.any():
        return None
    frame = pd.DataFrame({"t": t, "q": q}).groupby("t", sort=True)["q"].max()
    times, vals = frame.index.to_numpy(), frame.to_numpy()
    area, _ = plots.time_mean(times, np.append(times[1:], edges[-1]), vals, edges)
    return area / np.diff(edges)


def fleet_is_dynamic(run: RunFiles) -> bool:
    ft = run.fleet_timeline
    if ft is None or not ft.num_rows:
        return False
    pools = (run.summary.get("fleet") or {}).get("pools") or {}
    if len(set(ft.column("pool").to_pylist())) > 1 or len(pools) > 1:
        return True
    if any(p.get("autoscaled") or p.get("num_scale_ups") for p in pools.values()):
        return True
    failures = run.summary.get("failures") or {}
    if failures.get("num_failures") or failures.get("num_preemptions"):
        return True
    other = ("num_provisioning", "num_loading", "num_starting", "num_draining")
    return any(col(ft, c).any() for c in other) or np.unique(col(ft, "num_serving")).size > 1


def _fleet_panels(run: RunFiles, span: float) -> list[dict]:
    """Per pool: replicas by lifecycle state (stacked) and desired replicas; then the $/h
    of the whole fleet. fleet_timeline has a row per pool per change (several at one
    time): the last row at a time holds."""
    frame = run.fleet_timeline.to_pandas()
    frame = frame[frame["time_s"] <= span]
    panels = []
    for name, part in frame.groupby("pool", sort=False):
        last = part.groupby("time_s", sort=True).last()
        others = [f"num_{s}" for s in plots.STATE_COLOURS if s != "serving"]
        steady = (
            last["num_serving"].nunique() == 1
            and last["desired_replicas"].nunique() == 1
            and not last[[c for c in others if c in last]].to_numpy().any()
        )
        if steady:  # a constant count: the pool table says it; no flat panel
            continue
        t = np.append(last.index.to_numpy(), span)
        lower = np.zeros(t.size)
        series = []
        for state, colour in plots.STATE_COLOURS.items():
            column = f"num_{state}"
            if column not in last or not last[column].any():
                continue
            v = last[column].to_numpy().astype(float)
            upper = lower + np.append(v, v[-1])
            series.append((t, upper, state, {"kind": "band", "lower": lower, "color": colour}))
            lower = upper
        desired = last["desired_replicas"].to_numpy().astype(float)
        series.append(
            (t, np.append(desired, desired[-1]), "desired", {"color": "k", "ls": "--", "lw": 1.2})
        )
        panels.append(
            {
                "title": f"pool {name}: replicas by state, and the desired count",
                "ylabel": "replicas",
                "series": series,
                "integer": True,
                "events": _losses(run, str(name)),
            }
        )
    usd = (
        frame.groupby(["time_s", "pool"], sort=True)["usd_per_hour"]
        .last()
        .unstack()
        .ffill()
        .fillna(0.0)
        .sum(axis=1)
    )
    t, v = np.append(usd.index.to_numpy(), span), usd.to_numpy()
    if np.unique(v).size > 1:
        panels.append(
            {
                "title": "billed rate, all pools",
                "ylabel": "cost (\\$/h)",
                "series": [
                    (t, np.append(v, v[-1]), "fleet \\$/h", {"color": "#8c564b", "lw": 1.4})
                ],
            }
        )
    return panels


LOSS_COLOURS = {"failure": "#d62728", "preemption": "#8c564b"}


def _losses(run: RunFiles, pool: str) -> list[tuple[float, str, str]]:
    """(time, label, colour) of the pool's replica failures and spot preemptions."""
    events = (run.summary.get("failures") or {}).get("events") or []
    out = []
    for event in events:
        if not isinstance(event, dict) or event.get("pool") != pool:
            continue
        kind, time_s = event.get("kind"), event.get("time_s")
        if kind in LOSS_COLOURS and isinstance(time_s, int | float):
            label = "replica failure" if kind == "failure" else "spot preemption"
            out.append((float(time_s), label, LOSS_COLOURS[kind]))
    return out


def _disagg_panel(run: RunFiles, edges: np.ndarray, w: float) -> dict:
    dt = run.disaggregation_timeline
    t = col(dt, "time_s")
    ends = np.append(t[1:], edges[-1])
    series = []
    labels = {
        "num_transfers_queued": ("queued for the link", {"color": "#d62728"}),
        "num_transferring": ("transferring", {"color": "#1f77b4"}),
        "num_awaiting_decode_blocks": ("waiting for decode KV blocks", {"color": "#ff7f0e"}),
        "num_prefill_held": ("held on prefill replicas", {"color": "0.5", "lw": 0.8}),
    }
    for name, (label, style) in labels.items():
        if name in dt.column_names:
            v = col(dt, name)
            area, _ = plots.time_mean(t, ends, v, edges)
            peak = int(v.max()) if v.size else 0
            series.append((*_padded(edges, area / np.diff(edges)), f"{label} (peak {peak})", style))
    return {
        "title": f"KV transfers prefill → decode (time-mean per {w:g} s window)",
        "ylabel": "requests",
        "series": series,
    }
