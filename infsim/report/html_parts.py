"""The text parts of a run's report.html (`html_run.py`): header, warnings and the headline
tables, built from summary.json and scenario.resolved.yaml. Pure string building."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from infsim.report.plots import fmt_ms

STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1120px;"
    "margin:1.2em auto;padding:0 1em;color:#222;font-size:14px}"
    "h1{font-size:22px;margin:0 0 .2em}h2{font-size:17px;border-bottom:1px solid #ddd;"
    "margin:1.4em 0 .5em;padding-bottom:.2em}"
    ".desc{color:#555;margin:0 0 .6em}"
    "table{border-collapse:collapse;font-size:13px;margin:.3em 1.5em .6em 0}"
    "td,th{border:1px solid #d4d4d4;padding:3px 8px;text-align:right}"
    "th{background:#f1f1f1}td.k,th.k{text-align:left}"
    "table.facts td{border:none;text-align:left;padding:1px 10px 1px 0;vertical-align:top}"
    "table.facts td.k{font-weight:600;color:#444;white-space:nowrap}"
    ".tables{display:flex;flex-wrap:wrap;align-items:flex-start}"
    "td.ok{background:#e6f4e6}td.miss{background:#fbe3e3;font-weight:600}"
    ".warn{background:#fff3cd;border:1px solid #e0b84c;border-left:6px solid #d9534f;"
    "padding:.5em .9em;margin:.6em 0;border-radius:3px}.warn b{color:#a12622}"
    ".info{background:#eef4fb;border:1px solid #bcd3ea;padding:.4em .9em;margin:.6em 0;"
    "border-radius:3px}"
    ".note{color:#555;font-size:12.5px;margin:.2em 0 .4em}"
    "img{max-width:100%;height:auto;display:block;margin:.4em 0}"
    "pre{font-size:11px;background:#f7f7f7;padding:.6em;overflow:auto;max-height:30em}"
    "details{margin:.3em 0}summary{cursor:pointer;color:#0b5394}"
)
METRICS = ("TTFT", "TPOT", "ITL", "E2E")


def esc(value: Any) -> str:
    return html.escape(str(value))


def get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def slo_ms(scenario: Mapping[str, Any]) -> dict[str, float | None]:
    slo = scenario.get("slo") or {}
    out: dict[str, float | None] = {}
    for name in ("TTFT", "TPOT", "E2E"):
        value = slo.get(f"{name.lower()}_s")
        out[name] = float(value) * 1e3 if isinstance(value, int | float) else None
    return out


def _facts(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td class=k>{esc(k)}</td><td>{v}</td></tr>" for k, v in rows if v)
    return f"<table class=facts>{body}</table>"


def _on(flag: Any) -> str:
    return "on" if flag else "off"


def _parallel(dep: Mapping[str, Any], tp: Any = None) -> str:
    parts = [f"TP{tp or dep.get('tensor_parallel') or 1}"]
    for key, name in (("pipeline_parallel", "PP"), ("expert_parallel", "EP")):
        if (dep.get(key) or 1) > 1:
            parts.append(f"{name}{dep[key]}")
    return " ".join(parts)


def _pools(summary: Mapping[str, Any], scenario: Mapping[str, Any]) -> str:
    dep = scenario.get("deployment") or {}
    configured = {p.get("name"): p for p in dep.get("pools") or []}
    lines = []
    for name, pool in (get(summary, "fleet", "pools") or {}).items():
        conf = configured.get(name) or {}
        lo, hi = pool.get("min_replicas"), pool.get("max_replicas")
        n = pool.get("replicas_initial")
        count = f"{n} replica{'' if n == 1 else 's'}"
        if pool.get("autoscaled") or (lo is not None and hi is not None and lo != hi):
            count += f", autoscaled {lo}..{hi} (peak {pool.get('replicas_peak')})"
        role = conf.get("role")
        price = pool.get("usd_per_gpu_hour")
        lines.append(
            f"<b>{esc(name)}</b>{'' if role in (None, 'mixed', name) else f' ({esc(role)})'}: "
            f"{esc(pool.get('gpu'))}, {_gpus(pool.get('gpus_per_replica'))}/replica "
            f"{esc(_parallel(dep, conf.get('tensor_parallel')))}, {esc(count)}, "
            f"{esc(pool.get('pricing'))}"
            + (f" ${price:,.2f}/GPU-h" if isinstance(price, int | float) else "")
        )
    return "<br>".join(lines)


def _gpus(n: Any) -> str:
    return f"{n} GPU{'' if n == 1 else 's'}"


def _autoscaling(scenario: Mapping[str, Any]) -> str:
    auto = scenario.get("autoscaling")
    if not auto:
        return ""
    return esc(
        f"on {auto.get('signal')}, target {auto.get('target_per_replica'):g} per replica, "
        f"every {auto.get('interval_s'):g} s over {auto.get('window_s'):g} s, scale-down "
        f"after {auto.get('scale_down_stabilization_s'):g} s stable"
    )


def _engine(scenario: Mapping[str, Any]) -> str:
    eng = scenario.get("engine") or {}
    spec = eng.get("speculative")
    spec_text = "off"
    if isinstance(spec, Mapping):
        spec_text = f"{spec.get('method')} k={spec.get('num_speculative_tokens')}"
    parts = [
        f"max_num_seqs {eng.get('max_num_seqs')}",
        f"max_num_batched_tokens {eng.get('max_num_batched_tokens'):,}"
        if isinstance(eng.get("max_num_batched_tokens"), int)
        else f"max_num_batched_tokens {eng.get('max_num_batched_tokens')}",
        f"prefix caching {_on(eng.get('enable_prefix_caching'))}",
        f"chunked prefill {_on(eng.get('enable_chunked_prefill'))}",
        f"speculative {spec_text}",
        f"async scheduling {_on(eng.get('async_scheduling'))}",
    ]
    if eng.get("version"):
        parts.append(f"vLLM {eng['version']}")
    return esc(" · ".join(parts))


def _workload(summary: Mapping[str, Any], scenario: Mapping[str, Any]) -> str:
    wl = scenario.get("workload") or {}
    total = get(summary, "requests", "total")
    parts = [f"{total:,} requests" if isinstance(total, int) else ""]
    if isinstance(wl.get("trace"), Mapping):
        parts.append(f"trace {wl['trace'].get('path')}")
    syn = wl.get("synthetic")
    if isinstance(syn, Mapping):
        arrival = syn.get("arrival") or {}
        rate = arrival.get("rate_per_s")
        parts.append(
            f"{arrival.get('kind', 'synthetic')} arrivals"
            + (f" at {rate:g} req/s" if isinstance(rate, int | float) else "")
        )
        for key, label in (("prompt_tokens", "prompt"), ("output_tokens", "output")):
            mean = (syn.get(key) or {}).get("mean")
            if isinstance(mean, int | float):
                parts.append(f"{label} mean {mean:,.0f} tokens")
    for key, label in (
        ("rate_scale", "rate ×"),
        ("target_rate_per_s", "target rate"),
        ("max_concurrency", "max concurrency"),
    ):
        if wl.get(key) is not None:
            parts.append(f"{label} {wl[key]:g}")
    return esc(", ".join(p for p in parts if p))


def _calibration(summary: Mapping[str, Any]) -> str:
    cal = summary.get("calibration") or {}
    name = cal.get("name")
    if not name:
        return ""
    cover = cal.get("coverage") or {}
    shares = ", ".join(f"{k} {v:.0%}" for k, v in cover.items() if isinstance(v, int | float) and v)
    if name == "roofline":
        return esc("none: roofline cost model (typically 20–40 % off a real engine)")
    return esc(f"{name}" + (f" (step time from: {shares})" if shares else ""))


def slo_text(slo: Mapping[str, float | None]) -> str:
    limits = [f"{k} ≤ {fmt_ms(v)}" for k, v in slo.items() if v is not None]
    if not limits:
        return "none set (every completed request counts as meeting it)"
    return esc(", ".join(limits) + " per request; attainment = share of requests within all")


def deployment_facts(
    summary: Mapping[str, Any], scenario: Mapping[str, Any], fallback: str
) -> tuple[str, str]:
    dep_s = summary.get("deployment") or {}
    dep = scenario.get("deployment") or {}
    name = scenario.get("name") or fallback
    title = f"infsim run: {name}"
    pools = get(summary, "fleet", "pools") or {}
    if dep.get("pools"):
        serving = _pools(summary, scenario)
    else:
        n = dep.get("replicas") or 1
        serving = esc(
            f"{n} replica{'s' if n > 1 else ''} × {dep_s.get('gpu')} {_parallel(dep)} "
            f"({dep_s.get('num_gpus')} GPU{'s' if (dep_s.get('num_gpus') or 1) > 1 else ''})"
        )
    precision = f"weights {dep.get('weight_precision')}, KV cache {dep.get('kv_cache_precision')}"
    router = get(scenario, "router", "kind")
    rows = [
        ("model", esc(f"{dep_s.get('model') or scenario.get('model')} ({precision})")),
        ("GPU", esc(dep_s.get("gpu")) if not pools or len(pools) == 1 else ""),
        ("pools" if dep.get("pools") else "replicas", serving),
        ("autoscaling", _autoscaling(scenario)),
        ("engine", _engine(scenario)),
        (
            "router",
            esc(router)
            if router and (len(pools) > 1 or (dep.get("replicas") or 1) > 1 or dep.get("pools"))
            else "",
        ),
        ("workload", _workload(summary, scenario)),
        ("calibration", _calibration(summary)),
        ("SLO", slo_text(slo_ms(scenario))),
    ]
    desc = scenario.get("description")
    head = f"<p class=desc>{esc(desc)}</p>" if desc else ""
    return title, head + _facts(rows)


def notes(summary: Mapping[str, Any], scenario: Mapping[str, Any]) -> str:
    out = []
    sens = summary.get("sensitivity")
    if isinstance(sens, Mapping) and sens.get("cliff"):
        items = "".join(f"<li>{esc(w)}</li>" for w in sens.get("warnings") or [])
        out.append(
            "<div class=warn><b>Near a cliff: do not plan on these p99s.</b> A 10 % error in "
            f"step cost or arrival rate changes a p99 by more than 2×:<ul>{items}</ul></div>"
        )
    elif isinstance(sens, Mapping):
        out.append(
            "<div class=info>Cliff indicator: no p99 moves by more than 2× when step "
            "cost or arrival rate is ±10 %.</div>"
        )
    req = summary.get("requests") or {}
    lost = [f"{req[k]:,} {k}" for k in ("rejected", "failed") if req.get(k)]
    if lost:
        out.append(
            f"<div class=warn><b>{esc(', '.join(lost))}</b> of {req.get('total'):,} "
            "requests: the latency numbers cover completed requests only.</div>"
        )
    att = get(summary, "slo", "attainment")
    has_slo = any(v is not None for v in slo_ms(scenario).values())
    if isinstance(att, int | float) and has_slo and att < 0.99:
        out.append(
            f"<div class=warn><b>SLO attained by {att:.1%} of requests</b> (below 99 %).</div>"
        )
    return "".join(out)


def _interval(leaf: Any, fmt: Callable[[float], str]) -> str:
    if not isinstance(leaf, Mapping) or leaf.get("lo") is None or leaf.get("hi") is None:
        return ""
    return f" [{fmt(leaf['lo'])}, {fmt(leaf['hi'])}]"


def _sig(v: float) -> str:
    """A bound in the unit of its value, to about three significant figures."""
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:.3g}"


def _latency_cell(seconds: Any, leaf: Any) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    text = fmt_ms(seconds * 1e3)
    scale = 1e3 if text.endswith(" ms") else 1.0  # bounds in the value's own unit
    return esc(text + _interval(leaf, lambda v: _sig(v * scale)))


def headline_tables(summary: Mapping[str, Any], slo: Mapping[str, float | None]) -> str:
    stats = ("mean", "p50", "p90", "p99")
    has_slo = any(v is not None for v in slo.values())
    head = "".join(f"<th>{s}</th>" for s in stats) + ("<th>SLO</th>" if has_slo else "")
    rows = []
    for metric in METRICS:
        values = get(summary, "latency_s", metric.lower()) or {}
        cells = []
        for stat in stats:
            leaf = get(summary, "intervals", "latency_s", metric.lower(), stat)
            cls = ""
            limit = slo.get(metric)
            if stat == "p99" and limit is not None and isinstance(values.get(stat), int | float):
                cls = " class=ok" if values[stat] * 1e3 <= limit else " class=miss"
            cells.append(f"<td{cls}>{_latency_cell(values.get(stat), leaf)}</td>")
        if has_slo:
            limit = slo.get(metric)
            cells.append(f"<td>{'' if limit is None else esc('≤ ' + fmt_ms(limit))}</td>")
        rows.append(f"<tr><td class=k>{metric}</td>{''.join(cells)}</tr>")
    latency = f"<table><tr><th class=k>latency</th>{head}</tr>{''.join(rows)}</table>"

    def num(path: tuple[str, ...], fmt: Callable[[float], str], bounds: bool = True) -> str:
        value = get(summary, *path)
        if not isinstance(value, int | float):
            return "—"
        leaf = get(summary, "intervals", *path) if bounds else None
        return esc(fmt(value) + _interval(leaf, fmt))

    req = summary.get("requests") or {}
    facts = [
        ("throughput", num(("throughput", "requests_per_s"), lambda v: f"{v:,.2f}") + " req/s"),
        (
            "output tokens",
            num(("throughput", "output_tokens_per_s"), lambda v: f"{v:,.0f}")
            + " tok/s ("
            + num(("throughput", "output_tokens_per_s_per_gpu"), lambda v: f"{v:,.0f}")
            + " per GPU)",
        ),
        ("SLO attainment", num(("slo", "attainment"), lambda v: f"{v:.1%}")),
        (
            "goodput",
            num(("slo", "goodput_requests_per_s"), lambda v: f"{v:,.2f}") + " req/s within SLO",
        ),
        (
            "cost",
            "$"
            + num(("cost", "usd_per_hour"), lambda v: f"{v:,.2f}")
            + " per hour (mean over the run)",
        ),
        (
            "",
            "$"
            + num(("cost", "usd_per_million_output_tokens"), lambda v: f"{v:,.3f}")
            + " per M output tokens",
        ),
        (
            "",
            "$"
            + num(("cost", "usd_total"), lambda v: f"{v:,.2f}", bounds=False)
            + " for "
            + num(("cost", "gpu_hours"), lambda v: f"{v:,.2f}", bounds=False)
            + " GPU-h",
        ),
        (
            "requests",
            esc(
                f"{req.get('completed', 0):,} completed of {req.get('total', 0):,}; "
                f"{req.get('preemptions', 0):,} KV-cache preemptions"
            ),
        ),
    ]
    failures = _failures(summary.get("failures"))
    if failures:
        facts.append(("failures", esc(failures)))
    sim = summary.get("simulation") or {}
    if isinstance(sim.get("simulated_s"), int | float):
        facts.append(("simulated", esc(f"{sim['simulated_s']:,.1f} s")))
    body = "".join(f"<tr><td class=k>{esc(k)}</td><td>{v}</td></tr>" for k, v in facts)
    note = ""
    level = get(summary, "intervals", "level")
    n = get(summary, "intervals", "num_replications")
    if level is not None:
        note = (
            f"<p class=note>[lo, hi]: {level:.0%} prediction interval for one more run, "
            f"from {n} replications (docs/uncertainty.md).</p>"
        )
    return (
        f"<div class=tables>{latency}<table class=facts>{body}</table></div>{note}"
        "<p class=note>Latencies over completed requests; p99 cells green when within "
        "the SLO limit, red when not.</p>"
    )


def _failures(failures: Any) -> str:
    """Replica failures, spot preemptions and retries (summary.json `failures`)."""
    if not isinstance(failures, Mapping) or not (
        failures.get("policy") or failures.get("num_failures") or failures.get("num_preemptions")
    ):
        return ""
    notices = failures.get("num_preemption_notices") or 0
    return (
        f"{failures.get('num_failures', 0):,} replica failures, "
        f"{failures.get('num_preemptions', 0):,} spot preemptions"
        + (f" ({notices:,} with notice)" if notices else "")
        + f"; {failures.get('requests_retried', 0):,} requests retried "
        f"({failures.get('num_retries', 0):,} retries), "
        f"{failures.get('requests_failed', 0):,} failed"
        + (f"; policy {failures['policy']}" if failures.get("policy") else "")
    )


def pool_table(summary: Mapping[str, Any]) -> str:
    pools = get(summary, "fleet", "pools") or {}
    if not pools:
        return ""
    head = (
        "pool",
        "GPU",
        "replicas (initial / min / max / peak)",
        "scale-ups",
        "scale-downs",
        "cold starts",
        "GPU-h",
        "share of cost",
    )
    rows = []
    for name, p in pools.items():
        share = get(summary, "cost", "by_pool", name, "share")
        cells = [
            name,
            p.get("gpu"),
            f"{p.get('replicas_initial')} / {p.get('min_replicas')} / {p.get('max_replicas')}"
            f" / {p.get('replicas_peak')}",
            p.get("num_scale_ups"),
            p.get("num_scale_downs"),
            get(p, "cold_starts", "count"),
            f"{p.get('gpu_hours', 0):.2f}",
            "—" if share is None else f"{share:.0%}",
        ]
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    return (
        "<table><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def disagg_table(summary: Mapping[str, Any]) -> str:
    dis = summary.get("disaggregation") or {}
    rows = []
    for key, label in (
        ("transfer_s", "KV transfer"),
        ("transfer_queue_s", "queued for link"),
        ("decode_wait_s", "waiting for decode"),
    ):
        d = dis.get(key) or {}
        cells = [_latency_cell(d.get(s), None) for s in ("mean", "p50", "p99")]
        rows.append(
            f"<tr><td class=k>{esc(label)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    if not rows:
        return ""
    n = dis.get("num_transferred")
    return (
        f"<p class=note>{esc(f'{n:,}' if isinstance(n, int) else '?')} requests' KV caches "
        "moved from prefill to decode replicas.</p><table><tr><th class=k>per request</th>"
        "<th>mean</th><th>p50</th><th>p99</th></tr>" + "".join(rows) + "</table>"
    )
