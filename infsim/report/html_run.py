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
from infsim.report.run_panels import col, fleet_is_dynamic, over_time

REPORT = "report.html"


def _span(run: RunFiles) -> float:
    req, tl = run.requests, run.timeline
    ends = [float(np.nanmax(col(req, c))) for c in ("arrival_s", "finish_s") if req.num_rows]
    if tl.num_rows:
        ends.append(float(np.nanmax(col(tl, "end_s"))))
    sim = (run.summary.get("simulation") or {}).get("simulated_s")
    if isinstance(sim, int | float):
        ends.append(float(sim))
    finite = [e for e in ends if np.isfinite(e)]
    return max(finite) if finite and max(finite) > 0 else 1.0


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
        name: col(req, column)[done]
        for name, column in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("E2E", "e2e_s"))
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
        sections.append(("Over time", over_time(run, slo, span)))
    if fleet_is_dynamic(run):
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
