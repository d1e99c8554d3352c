"""`infsim report DIR` → DIR/report.html: one self-contained page, viewable offline.

Plots are drawn with matplotlib (Agg backend, imported lazily) and embedded as base64
PNGs; there are no scripts, styles or fonts fetched from anywhere. A run directory gets
the run report of `infsim.report.html_run` (header, headline numbers, latency tails, over
time, fleet). A sweep directory gets its table and cost vs p99 latency
with the Pareto front; a capacity search gets its capacity curve; an optimize search
gets its trials as well.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from infsim.errors import InputError
from infsim.report.read import is_run_dir
from infsim.sweep.results import DEFAULT_METRICS, results_table
from infsim.sweep.search import pareto_front
from infsim.sweep.store import MANIFEST, ResultStore, write_atomic
from infsim.sweep.tables import cell, header

_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
    "padding:2px 6px;text-align:right}th{background:#eee}img{max-width:100%}"
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return (
        f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
    )


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(header(str(c)))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, sections: list[tuple[str, str]]) -> str:
    parts = [f"<h2>{html.escape(h)}</h2>{body}" for h, body in sections]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        + "".join(parts)
        + "</body></html>\n"
    )


# -- a run ----------------------------------------------------------------------------------
def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        name = f"{prefix}{k}"
        out.update(_flat(v, f"{name}.") if isinstance(v, dict) else {name: v})
    return out


# -- a sweep or search ----------------------------------------------------------------------
def cost_latency_plot(table: pd.DataFrame, cost: str, latency: str) -> str:
    plt = _plt()
    ok = table[table["status"] == "ok"] if "status" in table else table
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter(ok[latency], ok[cost], s=18, alpha=0.6, label="points")
    front = ok.iloc[pareto_front(ok[cost].tolist(), ok[latency].tolist())]
    ax.plot(front[latency], front[cost], "r-o", ms=5, label="Pareto front")
    ax.set(xlabel=f"{latency}", ylabel=f"{cost}", title="cost vs p99 latency")
    positive = ok[latency][ok[latency] > 0]
    if len(positive) and positive.max() > 20 * positive.min():
        ax.set_xscale("log")  # overloaded points sit decades to the right
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def capacity_plot(table: pd.DataFrame, manifest: dict[str, Any]) -> str:
    plt = _plt()
    df = table.sort_values("workload.rate_scale")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = df["workload.rate_scale"]
    for col in ("latency_s.ttft.p99", "latency_s.tpot.p99", "latency_s.e2e.p99"):
        if col in df:
            ax.plot(x, df[col], "o-", label=col)
    ax.set(xlabel="workload.rate_scale", ylabel="p99 latency (s)", yscale="log")
    result = manifest.get("result")
    if result and result.get("rate_scale"):
        ax.axvline(result["rate_scale"], color="g", ls=":", label="capacity")
    handles = ax.get_legend_handles_labels()
    if "slo.attainment" in df:
        ax2 = ax.twinx()
        ax2.plot(x, df["slo.attainment"], "k--s", ms=4, label="SLO attainment")
        ax2.set_ylabel("SLO attainment")
        more = ax2.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    fig.legend(*handles, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.0))
    ax.grid(alpha=0.3)
    return _png(fig)


def sweep_report(directory: Path) -> str:
    store = ResultStore(directory, create=False)  # a reader: creates and deletes nothing
    manifest = store.manifest()
    table = results_table(store)
    kind = manifest.get("kind", "sweep")
    if table.empty:
        return _page(f"infsim {kind}: {directory.name}", [("Points", "(no finished points)")])
    settings = manifest.get("settings") or {}
    cost = settings.get("objective", "cost.usd_per_million_output_tokens")
    latency = settings.get("latency", "latency_s.e2e.p99")
    axes = list(manifest.get("axes", {}).get("axes", {})) or ["workload.rate_scale"]
    shown = [c for c in ["point", *axes, *DEFAULT_METRICS] if c in table.columns]
    sections = []
    if kind == "capacity" and "workload.rate_scale" in table:
        sections.append(("Capacity curve", capacity_plot(table, manifest)))
        result = manifest.get("result") or {}
        sections.append(("Result", _table(pd.DataFrame([result])) if result else "(running)"))
    if cost in table and latency in table and kind != "capacity":
        sections.append(("Cost vs p99 latency", cost_latency_plot(table, cost, latency)))
    if kind == "optimize":
        best = manifest.get("best")
        sections.append(("Best", html.escape(json.dumps(best)) if best else "no trial met the SLO"))
    sections.append((f"Points ({len(table)})", _table(table[shown])))
    skipped = manifest.get("skipped", [])
    if skipped:
        sections.append(("Skipped", _table(pd.DataFrame(skipped))))
    return _page(f"infsim {kind}: {directory.name}", sections)


def write_report(directory: Path, out: Path | None = None) -> Path:
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory")
    if (directory / MANIFEST).exists():
        if ResultStore(directory, create=False).manifest().get("kind") == "plan":
            raise InputError(
                f"{directory}: an infsim plan directory, whose report.html infsim plan writes "
                "(ranked candidates, Pareto front, p99 vs load); run the same plan again to "
                "rewrite it (its points are stored, so that is quick)"
            )
        text = sweep_report(directory)
    elif is_run_dir(directory):  # the planner's run page (infsim/report/html_run.py)
        from infsim.report.html_run import write_run_report

        return write_run_report(directory, out)
    else:
        raise InputError(
            f"{directory}: neither a run directory (summary.json) nor a sweep directory "
            f"({MANIFEST}); give what infsim run, sweep, capacity or optimize wrote"
        )
    out = out or directory / "report.html"
    try:
        write_atomic(out, text.encode())
    except OSError as err:
        raise InputError(f"{out}: cannot write: {err.strerror or type(err).__name__}") from None
    return out
