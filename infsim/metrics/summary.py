"""Run summary with stable keys (seconds, tokens, USD), computed after the run.

Throughput and cost use the simulated span from t = 0 (first arrival of the trace) to the
last completion. SLO attainment counts every request, rejected ones as misses; with no
SLO thresholds set every completed request meets it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from infsim import arrays
from infsim.metrics.percentiles import describe


class SLOSpec(Protocol):
    """What the summary needs of an SLO (the scenario's `slo` section has it): a limit in
    seconds per metric, or None."""

    @property
    def ttft_s(self) -> float | None: ...

    @property
    def tpot_s(self) -> float | None: ...

    @property
    def e2e_s(self) -> float | None: ...


SUMMARY_COLUMNS = (
    "status", "ttft_s", "tpot_s", "e2e_s", "num_prompt_tokens", "num_output_tokens",
    "num_cached_tokens", "num_preemptions",
)  # fmt: skip
"""The requests-table columns the summary reads (`summarize`, `slo_met`, and the fleet's
and failures' sections): a run streamed to disk reads back only these."""


def _col(table: pa.Table, name: str) -> np.ndarray:
    return arrays.to_numpy(table.column(name))


def status_is(table: pa.Table, status: str) -> np.ndarray:
    """Boolean mask of the rows with this `status` (no Python string per row)."""
    return arrays.equals_string(table.column("status"), status)


def slo_met(table: pa.Table, slo: SLOSpec) -> np.ndarray:
    ok = status_is(table, "finished")
    for field, column in (("ttft_s", "ttft_s"), ("tpot_s", "tpot_s"), ("e2e_s", "e2e_s")):
        limit = getattr(slo, field)
        if limit is not None:
            values = _col(table, column)
            ok &= np.nan_to_num(values, nan=0.0 if column == "tpot_s" else np.inf) <= limit
    return ok


def summarize(
    requests: pa.Table,
    itl: dict[str, float | None],
    *,
    slo: SLOSpec,
    num_gpus: int,
    usd_per_gpu_hour: float,
    simulated_s: float,
    wall_s: float,
    num_events: int,
) -> dict[str, Any]:
    done = status_is(requests, "finished")
    n_total = requests.num_rows
    n_done = int(done.sum())
    out_tokens = float(_col(requests, "num_output_tokens")[done].sum())
    in_tokens = float(_col(requests, "num_prompt_tokens")[done].sum())
    span = simulated_s if simulated_s > 0 else float("nan")
    met = int(slo_met(requests, slo).sum())
    gpu_hours = num_gpus * simulated_s / 3600.0
    usd_total = gpu_hours * usd_per_gpu_hour

    def per_million(tokens: float) -> float | None:
        return usd_total / (tokens / 1e6) if tokens > 0 else None

    tpot = _col(requests, "tpot_s")[done]
    return {
        "requests": {
            "total": n_total,
            "completed": n_done,
            "rejected": int(status_is(requests, "rejected").sum()),
            "preemptions": int(_col(requests, "num_preemptions").sum()),
        },
        "latency_s": {
            "ttft": describe(_col(requests, "ttft_s")[done]),
            "tpot": describe(tpot[~np.isnan(tpot)]),
            "itl": itl,  # describe_weighted of the recorder's samples
            "e2e": describe(_col(requests, "e2e_s")[done]),
        },
        "throughput": {
            "requests_per_s": n_done / span,
            "output_tokens_per_s": out_tokens / span,
            "total_tokens_per_s": (out_tokens + in_tokens) / span,
            "output_tokens_per_s_per_gpu": out_tokens / span / num_gpus,
        },
        "slo": {
            "attainment": met / n_total if n_total else None,
            "goodput_requests_per_s": met / span,
        },
        "cost": {
            "usd_total": usd_total,
            "usd_per_hour": num_gpus * usd_per_gpu_hour,
            "usd_per_million_output_tokens": per_million(out_tokens),
            "usd_per_million_total_tokens": per_million(out_tokens + in_tokens),
            "usd_per_request": usd_total / n_done if n_done else None,
            "gpu_hours": gpu_hours,
        },
        "prefix_cache": {
            "hit_tokens": int(_col(requests, "num_cached_tokens")[done].sum()),
            "hit_rate": float(_col(requests, "num_cached_tokens")[done].sum() / in_tokens)
            if in_tokens
            else 0.0,
        },
        "simulation": {
            "wall_s": wall_s,
            "simulated_s": simulated_s,
            "num_events": num_events,
        },
    }
