"""Compact console summary of a run (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v * 1e3:,.1f}"


def _bounds(leaf: dict[str, Any] | None, fmt: Any) -> str:
    """' [lo, hi]' of an interval leaf (`summary.json` intervals), '' when there is none."""
    if not leaf or leaf.get("lo") is None or leaf.get("hi") is None:
        return ""
    return f" [{fmt(leaf['lo'])}, {fmt(leaf['hi'])}]"


def _seconds(v: float) -> str:
    """Seconds to 2 significant decimals of their own scale (0.49 s, 12.3 s, 0.0081 s)."""
    return f"{v:.2f}" if abs(v) >= 0.095 else f"{v:.2g}"


def print_summary(summary: dict[str, Any], title: str, console: Console | None = None) -> None:
    console = console or Console()
    intervals = summary.get("intervals") or {}
    lat = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    lat.add_column("latency (ms)")
    for stat in ("mean", "p50", "p90", "p99"):
        lat.add_column(stat, justify="right")
    for metric in ("ttft", "tpot", "itl", "e2e"):
        row = summary["latency_s"][metric]
        lat.add_row(metric.upper(), *(_ms(row[s]) for s in ("mean", "p50", "p90", "p99")))
    console.print(lat)

    req, thr, slo, cost = (summary[k] for k in ("requests", "throughput", "slo", "cost"))
    facts = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    facts.add_column(style="bold")
    facts.add_column()
    failed = req.get("failed", 0)
    facts.add_row(
        "requests",
        f"{req['completed']:,} completed, {req['rejected']:,} rejected"
        + (f", {failed:,} failed" if failed else "")
        + f" of {req['total']:,}; {req['preemptions']:,} KV-cache preemptions",
    )
    failures = summary.get("failures")
    if failures and (failures.get("policy") or failures.get("num_failures")
                     or failures.get("num_preemptions")):  # fmt: skip
        facts.add_row("failures", _failures_line(failures))
    scaling = _scaling_line(summary.get("fleet"))
    if scaling:
        facts.add_row("fleet", scaling)
    facts.add_row(
        "throughput",
        f"{thr['requests_per_s']:.2f} req/s, {thr['output_tokens_per_s']:,.0f} output tok/s "
        f"({thr['output_tokens_per_s_per_gpu']:,.0f} per GPU)",
    )
    att = slo["attainment"]
    facts.add_row(
        "SLO",
        f"{'—' if att is None else f'{att:.1%}'} attained, "
        f"goodput {slo['goodput_requests_per_s']:.2f} req/s",
    )
    per_m = cost["usd_per_million_output_tokens"]
    facts.add_row(
        "cost",
        f"${cost['usd_per_hour']:,.2f}/h, "
        f"{'—' if per_m is None else f'${per_m:,.3f}'} per M output tokens, "
        f"${cost['usd_total']:,.2f} for {cost['gpu_hours']:,.2f} GPU-h",
    )
    spec = summary.get("speculative")
    if spec and spec["num_verifies"]:
        facts.add_row(
            "speculative",
            f"{spec['method']} k={spec['num_speculative_tokens']}: "
            f"{spec['mean_accepted_tokens_per_verify']:.2f} tokens per verify step, drafts "
            f"off in {spec['fraction_steps_disabled']:.0%} of steps, proposer "
            f"{spec['draft_time_share']:.0%} of engine time",
        )
    sim = summary["simulation"]
    facts.add_row(
        "simulation",
        f"{sim['simulated_s']:,.1f} s simulated in {sim['wall_s']:.2f} s wall",
    )
    if intervals:
        facts.add_row("intervals", _intervals_line(summary, intervals))
    console.print(facts)
    for warning in _cliff_warnings(summary.get("sensitivity")):
        console.print(warning, markup=False, highlight=False)


def _intervals_line(summary: dict[str, Any], intervals: dict[str, Any]) -> str:
    """`p99 TTFT 0.49 s [0.41, 0.63]` per metric, then throughput and $/M tokens, with the
    level, the number of replications and the sources that were on."""
    parts = []
    for metric in ("ttft", "tpot", "itl", "e2e"):
        value = summary["latency_s"][metric]["p99"]
        leaf = ((intervals.get("latency_s") or {}).get(metric) or {}).get("p99")
        if value is not None:
            parts.append(f"p99 {metric.upper()} {_seconds(value)} s{_bounds(leaf, _seconds)}")
    tput = summary["throughput"]["output_tokens_per_s"]
    leaf = (intervals.get("throughput") or {}).get("output_tokens_per_s")
    parts.append(f"{tput:,.0f} output tok/s{_bounds(leaf, lambda v: f'{v:,.0f}')}")
    per_m = summary["cost"]["usd_per_million_output_tokens"]
    if per_m is not None:
        leaf = (intervals.get("cost") or {}).get("usd_per_million_output_tokens")
        parts.append(f"${per_m:,.3f} per M output tokens{_bounds(leaf, lambda v: f'{v:,.3f}')}")
    on = [n for n, s in (intervals.get("sources") or {}).items() if s.get("enabled")]
    failed = intervals.get("num_failed") or 0
    head = (
        f"{intervals['level']:.0%} prediction intervals, {intervals['num_replications']} "
        f"replications ({', '.join(on) or 'no source'})"
        + (f", {failed} failed and left out" if failed else "")
        + ":"
    )
    return "\n".join([head, *parts])


def _cliff_warnings(sensitivity: dict[str, Any] | None) -> list[str]:
    """One plain line per p99 that a 10 % error moves by more than the cliff ratio."""
    if not sensitivity or not sensitivity.get("cliff"):
        return []
    head = (
        f"warning: this configuration is near a cliff: a {sensitivity['step']:.0%} error "
        f"changes a p99 by more than {sensitivity['cliff_ratio']:g}×; do not plan on its p99"
    )
    return [head, *(f"  {w}" for w in sensitivity["warnings"])]


def _failures_line(failures: dict[str, Any]) -> str:
    """Replica losses (failures, spot preemptions) and what they did to requests."""
    return (
        f"{failures['num_failures']:,} replica failures, "
        f"{failures['num_preemptions']:,} spot preemptions "
        f"({failures['num_preemption_notices']:,} with notice); "
        f"{failures['requests_retried']:,} requests retried ({failures['num_retries']:,} "
        f"retries), {failures['requests_failed']:,} failed (policy {failures['policy']})"
    )


def _scaling_line(fleet: dict[str, Any] | None) -> str:
    """Scale events and cold starts per pool; empty for a fixed fleet without them."""
    if not fleet:
        return ""
    parts = []
    for name, pool in fleet.get("pools", {}).items():
        ups, downs = pool.get("num_scale_ups", 0), pool.get("num_scale_downs", 0)
        cold = (pool.get("cold_starts") or {}).get("count", 0)
        peak = pool.get("replicas_peak", 0)
        if ups or downs or cold:
            parts.append(f"{name}: {ups:,} scale-ups, {downs:,} scale-downs, "
                         f"{cold:,} cold starts, peak {peak:,} replicas")  # fmt: skip
    return "; ".join(parts)
