"""One run's report.html: what a capacity planner reads at a glance (issue 16, item 4).

`run_report_html(read_run(DIR))` is one self-contained page (no scripts, no fetched fonts
or styles; PNGs embedded as base64): a header naming the deployment, engine knobs,
calibration and SLO; the headline numbers (with prediction intervals and the cliff warning
when summary.json has them); latency tails as complementary CDFs in ms with the SLO
lines; arrivals, throughput, p99 TTFT, queues and KV use over time; and, only for the runs
that have them, the fleet's replicas by state and $/h, and the KV-transfer queue of a
disaggregated run. `write_run_report(DIR)` writes DIR/report.html atomically. Figures are
drawn from binned or downsampled data (`plots.py`), so a large run reports in about a
second; the same run gives the same bytes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from infsim.errors import InputError
from infsim.report import plots
from infsim.report.html_parts import (
    STYLE,
    deployment_facts,
    disagg_table,
    headline_tables,
    notes,
    pool_table,
    slo_ms,
)
from infsim.report.read import RunFiles, read_run

REPORT = "report.html"


def _col(table: pa.Table, name: str, dtype=float) -> np.ndarray:
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


def _span(run: RunFiles) -> float:
    req, tl = run.requests, run.timeline
    ends = [float(np.nanmax(_col(req, c))) for c in ("arrival_s", "finish_s") if req.num_rows]
    if tl.num_rows:
        ends.append(float(np.nanmax(_col(tl, "end_s"))))
    sim = (run.summary.get("simulation") or {}).get("simulated_s")
    if isinstance(sim, int | float):
        ends.append(float(sim))
    finite = [e for e in ends if np.isfinite(e)]
    return max(finite) if finite and max(finite) > 0 else 1.0


def _over_time(run: RunFiles, slo: dict[str, float | None], span: float) -> str:
    edges, w = _edges(span)
    widths = np.diff(edges)
    req = run.requests
    status = req.column("status").to_numpy(zero_copy_only=False).astype(str)
    done = status == "finished"
    arrival, finish, ttft = _col(req, "arrival_s"), _col(req, "finish_s"), _col(req, "ttft_s")
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
    if _fleet_is_dynamic(run):
        panels.extend(_fleet_panels(run, span))
    if run.disaggregation_timeline is not None and run.disaggregation_timeline.num_rows:
        panels.append(_disagg_panel(run, edges, w))
    return plots.over_time(panels, span)


def _slo_met(req: pa.Table, slo: dict[str, float | None], done: np.ndarray):
    if all(v is None for v in slo.values()):
        return None
    ok = done.copy()
    for name, col in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("E2E", "e2e_s")):
        if slo.get(name) is not None:
            v = np.nan_to_num(_col(req, col) * 1e3, nan=0.0 if col == "tpot_s" else np.inf)
            ok &= v <= slo[name]
    return ok


def _replica_panels(run: RunFiles, edges: np.ndarray, w: float) -> list[dict]:
    tl = run.timeline
    rid, start, end = _col(tl, "replica_id", np.int64), _col(tl, "start_s"), _col(tl, "end_s")
    sums = {k: np.zeros(edges.size - 1) for k in ("num_running", "num_waiting")}
    kv_means = []
    for replica in np.unique(rid):
        mask = rid == replica
        s, e = start[mask], end[mask]
        for key in sums:
            area, _ = plots.time_mean(s, e, _col(tl, key)[mask], edges)
            sums[key] += area / np.diff(edges)
        area, covered = plots.time_mean(s, e, _col(tl, "kv_usage")[mask], edges)
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
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
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
    t, q = _col(ft, "time_s"), _col(ft, "num_gateway_queued")
    if not q.any():
        return None
    frame = pd.DataFrame({"t": t, "q": q}).groupby("t", sort=True)["q"].max()
    times, vals = frame.index.to_numpy(), frame.to_numpy()
    area, _ = plots.time_mean(times, np.append(times[1:], edges[-1]), vals, edges)
    return area / np.diff(edges)


def _fleet_is_dynamic(run: RunFiles) -> bool:
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
    return any(_col(ft, c).any() for c in other) or np.unique(_col(ft, "num_serving")).size > 1


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
                "title": f"pool {name}: replicas by state, and the autoscaler's desired count",
                "ylabel": "replicas",
                "series": series,
                "integer": True,
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


def _disagg_panel(run: RunFiles, edges: np.ndarray, w: float) -> dict:
    dt = run.disaggregation_timeline
    t = _col(dt, "time_s")
    ends = np.append(t[1:], edges[-1])
    series = []
    labels = {
        "num_transfers_queued": ("queued for the link", {"color": "#d62728"}),
        "num_transferring": ("transferring", {"color": "#1f77b4"}),
        "num_awaiting_decode_blocks": ("waiting for decode KV blocks", {"color": "#ff7f0e"}),
        "num_prefill_held": ("held on prefill replicas", {"color": "0.5", "lw": 0.8}),
    }
    for col, (label, style) in labels.items():
        if col in dt.column_names:
            v = _col(dt, col)
            area, _ = plots.time_mean(t, ends, v, edges)
            peak = int(v.max()) if v.size else 0
            series.append((*_padded(edges, area / np.diff(edges)), f"{label} (peak {peak})", style))
    return {
        "title": f"KV transfers prefill → decode (time-mean per {w:g} s window)",
        "ylabel": "requests",
        "series": series,
    }


def _details(run: RunFiles) -> str:
    summary = html.escape(json.dumps(run.summary, indent=2, sort_keys=False))
    scenario = html.escape(run.resolved_scenario)
    return (
        f"<details><summary>summary.json</summary><pre>{summary}</pre></details>"
        f"<details><summary>scenario.resolved.yaml</summary><pre>{scenario}</pre></details>"
    )


def _check(summary: dict[str, Any], directory: Path) -> None:
    latency = summary.get("latency_s")
    if not isinstance(latency, dict) or not all(isinstance(v, dict) for v in latency.values()):
        raise InputError(
            f"{directory / 'summary.json'}: latency_s: expected a mapping of metric -> "
            "percentiles; not a summary infsim run wrote (or the file was edited)"
        )


def run_report_html(run: RunFiles) -> str:
    """The page for one verified run (`infsim.report.read.read_run`)."""
    summary = run.summary
    _check(summary, run.directory)
    scenario = _scenario(run)
    slo = slo_ms(scenario)
    span = _span(run)
    title, facts = deployment_facts(summary, scenario, run.directory.name)
    sections: list[tuple[str, str]] = [("", facts), ("", notes(summary, scenario))]
    sections.append(("Headline numbers", headline_tables(summary, slo)))
    req = run.requests
    done = req.column("status").to_numpy(zero_copy_only=False).astype(str) == "finished"
    samples = {
        name: _col(req, col)[done]
        for name, col in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("E2E", "e2e_s"))
    }
    itl = (summary.get("latency_s") or {}).get("itl") or {}
    tails = plots.latency_tails(samples, slo, {"ITL": itl} if itl.get("p99") else {})
    if tails:
        sections.append(
            (
                "Latency tails",
                "<p class=note>Share of completed requests slower than x (log scale): the curve "
                "crosses the p99 line at the p99; a curve right of the red SLO line there misses "
                "it. TPOT is the mean time per output token of a request. ITL (gaps between "
                "tokens) is kept only as summary percentiles, drawn as points.</p>" + tails,
            )
        )
    if req.num_rows:
        sections.append(("Over time", _over_time(run, slo, span)))
    if _fleet_is_dynamic(run):
        sections.insert(-1 if req.num_rows else len(sections), ("Fleet", pool_table(summary)))
    if run.disaggregation_timeline is not None and run.disaggregation_timeline.num_rows:
        sections.insert(
            -1 if req.num_rows else len(sections), ("Disaggregation", disagg_table(summary))
        )
    sections.append(("Files", _details(run)))
    body = "".join(
        (f"<h2>{html.escape(h)}</h2>" if h else "") + f"<section>{b}</section>"
        for h, b in sections
        if b
    )
    return (
        "<!doctype html><html lang=en><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def _scenario(run: RunFiles) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(run.resolved_scenario)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def write_run_report(directory: Path, out: Path | None = None) -> Path:
    """Read and verify the run in `directory` and write its report (default
    DIRECTORY/report.html) whole or not at all; an `InputError` for a damaged run."""
    from infsim.workload.output import write_atomically

    directory = Path(directory)
    text = run_report_html(read_run(directory))
    out = Path(out) if out is not None else directory / REPORT
    write_atomically(out, lambda tmp: tmp.write_text(text, encoding="utf-8"), "report")
    return out
