"""Compact console summary of a run (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v * 1e3:,.1f}"


def print_summary(summary: dict[str, Any], title: str, console: Console | None = None) -> None:
    console = console or Console()
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
    console.print(facts)


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
