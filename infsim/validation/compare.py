"""Measured vs predicted: the statistics on each side and the signed % error.

Measured statistics come from per-request rows where the file has them (successful
requests only, numpy linear percentiles, as vLLM's bench computes them), else from the
aggregates the file states; a metric neither gives is not compared. Predicted statistics
come from the run summary (finished requests). `error_pct = (predicted − measured) /
measured · 100`; the median absolute error is over every compared key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infsim.validation.measured import (
    METRICS,
    STAT_KEYS,
    STATS,
    THROUGHPUT_KEY,
    MeasuredRequests,
    MeasuredRun,
    describe_stats,
)


@dataclass(frozen=True)
class MetricComparison:
    measured: float
    predicted: float | None
    error_pct: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"measured": self.measured, "predicted": self.predicted, "error_pct": self.error_pct}


@dataclass(frozen=True)
class ValidationResult:
    """Comparison keyed `<metric>_<stat>` (seconds) and `output_tokens_per_s` (tokens/s)."""

    metrics: dict[str, MetricComparison]
    median_abs_error_pct: float | None
    run: dict[str, Any] = field(default_factory=dict)
    """Provenance: format, model, replayed or not, request counts, notes."""

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": {key: value.to_json() for key, value in self.metrics.items()},
            "median_abs_error_pct": self.median_abs_error_pct,
            "run": self.run,
        }


def per_request_stats(rows: MeasuredRequests) -> tuple[dict[str, float], dict[str, str]]:
    """Statistics of the successful rows, and which metrics they could give."""
    ok = ~rows.failed
    out: dict[str, float] = {}
    ttft, e2e, num_out = rows.ttft_s[ok], rows.e2e_s[ok], rows.num_output_tokens[ok]
    values = {"ttft": ttft, "e2e": e2e, "tpot": rows.take(np.flatnonzero(ok)).tpot_s()}
    if rows.itl_s is not None:
        gaps = [g for g, keep in zip(rows.itl_s, ok, strict=True) if keep and g.size]
        values["itl"] = np.concatenate(gaps) if gaps else np.asarray([])
    sources: dict[str, str] = {}
    for metric, sample in values.items():
        stats = describe_stats(sample)
        if stats:
            out.update({f"{metric}_{stat}": v for stat, v in stats.items()})
            sources[metric] = "per-request"
    if rows.start_s is not None and np.isfinite(e2e).all() and ok.any():
        span = float((rows.start_s[ok] + e2e).max() - rows.start_s[ok].min())
        if span > 0:
            out[THROUGHPUT_KEY] = float(num_out.sum()) / span
            sources[THROUGHPUT_KEY] = "per-request"
    return out, sources


def measured_stats(
    run: MeasuredRun, rows: MeasuredRequests | None
) -> tuple[dict[str, float], dict[str, str]]:
    """Per-request statistics first; the file's stated aggregates fill the rest."""
    out, sources = per_request_stats(rows) if rows is not None else ({}, {})
    for metric in (*METRICS, THROUGHPUT_KEY):
        if metric in sources:
            continue
        keys = [THROUGHPUT_KEY] if metric == THROUGHPUT_KEY else [f"{metric}_{s}" for s in STATS]
        stated = {k: run.stats[k] for k in keys if k in run.stats}
        if stated:
            out.update(stated)
            sources[metric] = "aggregates"
    return out, sources


def predicted_stats(summary: dict[str, Any]) -> dict[str, float | None]:
    latency = summary["latency_s"]
    out: dict[str, float | None] = {f"{m}_{s}": latency[m].get(s) for m in METRICS for s in STATS}
    out[THROUGHPUT_KEY] = summary["throughput"]["output_tokens_per_s"]
    return out


def error_pct(predicted: float | None, measured: float) -> float | None:
    """Signed % error; None where it is undefined (no prediction, a measured 0, or a
    measured value so small that the ratio overflows)."""
    if predicted is None or not np.isfinite(predicted) or measured == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):  # numpy scalars: the NaN/inf is checked
        value = (predicted - measured) / measured * 100.0
    return float(value) if np.isfinite(value) else None


def compare(
    measured: dict[str, float], predicted: dict[str, float | None]
) -> tuple[dict[str, MetricComparison], float | None]:
    """Comparisons in `STAT_KEYS` order for every measured key, and the median |error|."""
    metrics = {
        key: MetricComparison(
            measured[key], predicted.get(key), error_pct(predicted.get(key), measured[key])
        )
        for key in STAT_KEYS
        if key in measured
    }
    errors = [abs(m.error_pct) for m in metrics.values() if m.error_pct is not None]
    return metrics, float(np.median(errors)) if errors else None
