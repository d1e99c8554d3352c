"""The run report's figures (`html_run.py`): matplotlib (Agg, imported lazily), PNG bytes
that do not depend on the clock (no Software/date metadata), drawn from binned or
downsampled data so a run of any size plots in about the same time.

Every function takes plain numpy arrays (seconds) and returns an `<img>` tag with the PNG
embedded as base64; axes carry units, times are simulated time.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

import numpy as np

DPI = 96
MAX_CURVE_POINTS = 1500
STATE_COLOURS = {  # replica lifecycle states, in stacking order
    "serving": "#2ca02c",
    "starting": "#ffbb78",
    "loading": "#ff7f0e",
    "provisioning": "#c7c7c7",
    "draining": "#9467bd",
}


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    pyplot.rcParams.update({"font.size": 9, "axes.titlesize": 10, "svg.hashsalt": "infsim"})
    return pyplot


def _tick(v: float) -> str:
    return f"{v / 1e3:,.10g}k" if v >= 1e4 else f"{v:,.10g}"


def plain_log(ax, axis: str = "y") -> None:
    """A log axis labelled 0.01, 0.1, 1, 10, 1,000 (no 10ⁿ mathtext, no minor labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, numticks=8))
    target.set_major_formatter(FuncFormatter(lambda v, _: _tick(v)))
    target.set_minor_formatter(NullFormatter())


def img(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt().close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def fmt_ms(ms: float) -> str:
    """A latency given in ms, to three significant figures, in ms below 10 s."""
    if ms >= 10_000:
        return f"{ms / 1e3:,.0f} s"
    if ms >= 1_000:
        return f"{ms / 1e3:.2f} s"
    if ms >= 10:
        return f"{ms:,.0f} ms"
    return f"{ms:.2g} ms"


# -- latency tails --------------------------------------------------------------------------
def ccdf_points(values: np.ndarray, limit: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, P(X ≥ x)) of the sample at no more than about `limit` ranks: log-spaced in the
    tail (every one of the largest values is kept up to the limit), linear in the body."""
    v = np.sort(values[np.isfinite(values)])
    n = v.size
    if n == 0:
        return v, v
    if n <= limit:
        k = np.arange(n, 0, -1)  # k values are ≥ v[n - k]
    else:
        tail = np.geomspace(1, n, limit * 2 // 3)
        body = np.linspace(1, n, limit // 3)
        k = np.unique(np.round(np.concatenate([tail, body])).astype(np.int64))[::-1]
    return v[n - k], k / n


def latency_tails(
    samples: Mapping[str, np.ndarray],
    slo_ms: Mapping[str, float | None],
    summary_points: Mapping[str, Mapping[str, float]],
) -> str:
    """Complementary CDFs (1 − F, log y) in ms, one panel per metric. `samples`: per-request
    values in seconds (TTFT, TPOT, E2E); `summary_points`: metrics that only have summary
    percentiles in seconds (ITL), drawn as points; `slo_ms`: a vertical line per limit."""
    pyplot = plt()
    names = [m for m in samples if np.isfinite(samples[m]).any()] + list(summary_points)
    if not names:
        return ""
    fig, axes = pyplot.subplots(1, len(names), figsize=(3.1 * len(names) + 0.6, 3.2))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=True):
        if name in samples:
            x, y = ccdf_points(samples[name] * 1e3)
            ax.step(x, y, where="post", lw=1.4, color="#1f77b4", label="requests")
            floor = y.min()
            title = f"{name} ({int(np.isfinite(samples[name]).sum()):,} requests)"
        else:
            pts = summary_points[name]
            qs = {"p50": 0.5, "p90": 0.1, "p95": 0.05, "p99": 0.01}
            xs = [pts[q] * 1e3 for q in qs if pts.get(q) is not None]
            ys = [qs[q] for q in qs if pts.get(q) is not None]
            ax.plot(xs, ys, "o--", color="#1f77b4", ms=5, lw=0.8, label="summary percentiles")
            x, floor = np.asarray(xs), 0.01
            title = f"{name} (percentiles only: not stored per request)"
        ax.set_yscale("log")
        plain_log(ax, "y")
        ax.set_ylim(min(floor, 0.01) / 1.5, 1.3)
        for level, label in ((0.1, "p90"), (0.01, "p99")):
            ax.axhline(level, color="0.6", lw=0.6, ls=":")
            ax.text(
                1.0,
                level,
                f" {label}",
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=7,
                color="0.4",
            )
        limit = slo_ms.get(name)
        if limit is not None:
            ax.axvline(limit, color="#d62728", lw=1.2, ls="--", label=f"SLO {fmt_ms(limit)}")
        lo_hi = [*x[x > 0], *(() if limit is None else (limit,))]
        if lo_hi and max(lo_hi) > 30 * min(lo_hi):
            ax.set_xscale("log")
            plain_log(ax, "x")
        ax.set_xlabel(f"{name} (ms)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=7)
    axes[0].set_ylabel("share of requests slower (1 − CDF)")
    fig.subplots_adjust(left=0.07, right=0.97, bottom=0.17, top=0.9, wspace=0.3)
    return img(fig, "latency tails: complementary CDFs in ms with SLO lines")


# -- over time ------------------------------------------------------------------------------
def window_s(span_s: float, bins: int = 60) -> float:
    """A round window length giving about `bins` windows over `span_s`."""
    raw = max(span_s, 1e-9) / bins
    for step in (
        0.01,
        0.02,
        0.05,
        0.1,
        0.2,
        0.5,
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        14400,
        21600,
        43200,
        86400,
    ):
        if step >= raw:
            return float(step)
    return float(86400 * np.ceil(raw / 86400))


def time_unit(span_s: float) -> tuple[float, str]:
    if span_s > 3 * 3600:
        return 3600.0, "h"
    if span_s > 20 * 60:
        return 60.0, "min"
    return 1.0, "s"


def time_mean(start: np.ndarray, end: np.ndarray, value: np.ndarray, edges: np.ndarray):
    """Integral of a piecewise-constant signal (value on [start, end), 0 in the gaps; the
    rows ordered and not overlapping) over each window, as (∫ value dt, ∫ 1 dt)."""
    order = np.argsort(start, kind="stable")
    s, e, v = start[order], np.maximum(end[order], start[order]), value[order]
    area = np.cumsum(v * (e - s))
    covered = np.cumsum(e - s)
    xs = np.empty(2 * s.size)
    xs[0::2], xs[1::2] = s, e
    out = []
    for cum in (area, covered):
        ys = np.empty(2 * s.size)
        ys[0::2] = np.concatenate([[0.0], cum[:-1]])
        ys[1::2] = cum
        out.append(np.diff(np.interp(edges, xs, ys, left=0.0)))
    return out[0], out[1]


def over_time(panels: Sequence[dict], span_s: float) -> str:
    """Stacked panels sharing the time axis. Each panel: {"title", "ylabel", "series":
    [(x_s, y, label, style)], "hline": (y, label) | None, "log": bool, "integer": bool};
    a style with kind "band" fills between its "lower" and y (stacked states)."""
    pyplot = plt()
    scale, unit = time_unit(span_s)
    height = 1.95 * len(panels) + 0.7
    fig, axes = pyplot.subplots(len(panels), 1, figsize=(11.5, height), sharex=True, squeeze=False)
    fig.subplots_adjust(
        left=0.08, right=0.79, top=1 - 0.3 / height, bottom=0.55 / height, hspace=0.42
    )
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        top = 0.0
        for x, y, label, style in panel["series"]:
            style = dict(style)
            kind = style.pop("kind", "step")
            if kind == "band":
                lower = style.pop("lower")
                ax.fill_between(x / scale, lower, y, step="post", label=label, lw=0, **style)
            else:
                ax.step(x / scale, y, where="post", label=label, **style)
            finite = np.asarray(y, dtype=float)[np.isfinite(y)]
            top = max(top, float(finite.max()) if finite.size else 0.0)
        labelled = set()
        for t, label, colour in panel.get("events") or ():
            ax.axvline(
                t / scale, color=colour, lw=1.6, ls=":", label=None if label in labelled else label
            )
            labelled.add(label)
        hline = panel.get("hline")
        if hline is not None:
            ax.axhline(hline[0], color="#d62728", ls="--", lw=1.1, label=hline[1])
            top = max(top, hline[0])
        if panel.get("log"):
            ax.set_yscale("log")
            plain_log(ax, "y")
        else:
            ax.set_ylim(0, max(top, 1e-9) * 1.12 if top > 0 else 1)
        if panel.get("integer"):
            ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(panel["ylabel"])
        ax.set_title(panel["title"], loc="left", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    axes[-1, 0].set_xlim(0, span_s / scale)
    axes[-1, 0].set_xlabel(f"simulated time ({unit})")
    return img(fig, "over time: " + ", ".join(p["title"] for p in panels))
