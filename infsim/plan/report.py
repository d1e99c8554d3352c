"""`DIR/report.html` of a plan: one offline page (matplotlib PNGs embedded as base64, no
scripts or fetched assets), built with the sweep report's page helpers.

Cost ($/hour) against p99 TTFT and p99 TPOT (ms), one panel each: every candidate that ran
is a point labelled by its rank (and its configuration on the Pareto front and for the
five cheapest), green where it meets the SLO and red where it
misses (at the largest replica count probed); dashed lines are the SLO limits; the line
is each panel's Pareto front through the SLO-meeting points only. Then p99 TTFT and TPOT
against the arrival rate for the Pareto front and the cheapest few (the headroom probes),
the ranked table and the skipped candidates with their reasons.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from infsim.errors import InputError
from infsim.sweep.report_html import _page, _plt, _png, _table
from infsim.sweep.search import SLOTarget, pareto_front
from infsim.sweep.store import write_atomic

_MET, _MISSED = "#2a9d4b", "#d1495b"
FULL_LABELS = 5
"""Points labelled with their whole configuration besides the Pareto front: ranks 1-5."""


def label(row: pd.Series) -> str:
    replicas = row["replicas"] if pd.notna(row["replicas"]) else row["replicas_probed"]
    return (
        f"{int(replicas)}× {row['gpu']} TP{int(row['tensor_parallel'])} {row['weight_precision']}"
    )


def cost_latency_panels(table: pd.DataFrame, target: SLOTarget) -> str:
    plt = _plt()
    ran = table[table["usd_per_hour"].notna() & table["ttft_p99_s"].notna()]
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    for ax, column, limit, name in (
        (axes[0], "ttft_p99_s", target.ttft_p99_s, "TTFT"),
        (axes[1], "tpot_p99_s", target.tpot_p99_s, "TPOT"),
    ):
        x_ms = ran[column] * 1e3
        colours = [_MET if met else _MISSED for met in ran["meets_slo"]]
        ax.scatter(x_ms, ran["usd_per_hour"], c=colours, s=30, zorder=3)
        for i, ((_, row), x) in enumerate(zip(ran.iterrows(), x_ms, strict=True)):
            # the Pareto front and the cheapest few get their configuration, the rest their
            # rank (the table below names it); neighbours get staggered offsets
            text = f"#{row['rank']}"
            if row["pareto"] or row["rank"] <= FULL_LABELS:
                text += f" {label(row)}"
            ax.annotate(text, (x, row["usd_per_hour"]), fontsize=7,
                        xytext=(4, (3, -10, 12)[i % 3]), textcoords="offset points")  # fmt: skip
        met = ran[ran["meets_slo"]]
        front = met.iloc[pareto_front(met["usd_per_hour"].tolist(), met[column].tolist())]
        if len(front):
            ax.plot(front[column] * 1e3, front["usd_per_hour"], "-", color=_MET, lw=1.2,
                    label="Pareto front (SLO met)")  # fmt: skip
        if limit is not None:
            ax.axvline(limit * 1e3, color="k", ls="--", lw=0.8, label=f"SLO {limit * 1e3:g} ms")
        ax.scatter([], [], c=_MET, label="meets the SLO")
        ax.scatter([], [], c=_MISSED, label="misses (largest count probed)")
        ax.set(xlabel=f"p99 {name} (ms)", ylabel="cost ($/hour)", title=f"cost vs p99 {name}")
        positive = x_ms[x_ms > 0]
        if len(positive) and positive.max() > 20 * positive.min():
            ax.set_xscale("log")  # candidates far off the SLO sit decades to the right
        costs = ran["usd_per_hour"][ran["usd_per_hour"] > 0]
        if len(costs) and costs.max() > 10 * costs.min():
            ax.set_yscale("log")  # many replicas of a small GPU cost decades more
        ax.margins(x=0.15, y=0.15)  # room for the labels at the edges
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    return _png(fig)


def load_panels(curves: pd.DataFrame, target: SLOTarget, rate_per_s: float) -> str:
    """p99 TTFT and TPOT (ms, log scale) against the arrival rate (req/s), one line per
    candidate (filled markers: SLO met), the SLO limits dashed, the target rate dotted."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
    for ax, column, limit, name in (
        (axes[0], "ttft_p99_s", target.ttft_p99_s, "TTFT"),
        (axes[1], "tpot_p99_s", target.tpot_p99_s, "TPOT"),
    ):
        for index, (_rank, part) in enumerate(curves.groupby("rank", sort=True)):
            colour = f"C{index % 10}"
            part = part.sort_values("rate_per_s")
            ax.plot(part["rate_per_s"], part[column] * 1e3, "-", color=colour, lw=1,
                    label=part["label"].iloc[0])  # fmt: skip
            met = part[part["meets_slo"]]
            missed = part[~part["meets_slo"]]
            ax.plot(met["rate_per_s"], met[column] * 1e3, "o", color=colour, ms=5)
            ax.plot(missed["rate_per_s"], missed[column] * 1e3, "o", mfc="none", color=colour,
                    ms=5)  # fmt: skip
        if limit is not None:
            ax.axhline(limit * 1e3, color="k", ls="--", lw=0.8, label=f"SLO {limit * 1e3:g} ms")
        ax.axvline(rate_per_s, color="grey", ls=":", lw=0.8, label=f"target {rate_per_s:g} req/s")
        ax.set(xlabel="arrival rate (req/s)", ylabel=f"p99 {name} (ms)", yscale="log",
               title=f"p99 {name} vs load (filled: SLO met)")  # fmt: skip
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def plan_page(
    title: str,
    table: pd.DataFrame,
    target: SLOTarget,
    header: str,
    curves: pd.DataFrame | None = None,
) -> str:
    ran = table[table["status"] != "skipped"]
    skipped = table[table["status"] == "skipped"][["gpu", "tensor_parallel",
                                                   "weight_precision", "note"]]  # fmt: skip
    shown = ran.drop(columns=["point_key"])
    sections = [("Question", f"<p>{html.escape(header)}</p>")]
    if len(ran):
        sections.append(("Cost vs p99 latency", cost_latency_panels(ran, target)))
    if curves is not None and len(curves):
        rate_per_s = float(table["target_rate_per_s"].iloc[0])
        sections.append(("Headroom: p99 vs load", load_panels(curves, target, rate_per_s)))
    sections.append((f"Candidates, ranked ({len(ran)})", _table(shown)))
    if len(skipped):
        sections.append((f"Skipped ({len(skipped)})", _table(skipped)))
    return _page(title, sections)


def write_plan_report(
    path: Path,
    title: str,
    table: pd.DataFrame,
    target: SLOTarget,
    header: str,
    curves: pd.DataFrame | None = None,
) -> Path:
    text = plan_page(title, table, target, header, curves)
    try:
        write_atomic(path, text.encode())
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror or type(err).__name__}") from None
    return path
