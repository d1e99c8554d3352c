"""Run one point in whatever process the executor chose, and return its row.

A point that fails — any exception — comes back as a row with status `failed` and the
error text, so the sweep goes on. The row carries the overrides, the key, the flattened
summary (`latency_s.ttft.p99`, `cost.usd_per_hour`, ... whatever summary.json holds),
the point's wall seconds and the worker's peak resident memory.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from infsim.sweep.points import PointTask, flatten

#: Columns every row has, before the overrides and metrics.
BASE_COLUMNS = ("key", "status", "error", "wall_s", "worker_pid", "worker_max_rss_bytes")


def _max_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def metric_columns(summary: dict[str, Any], reserved: set[str]) -> dict[str, Any]:
    """Scalar leaves of the summary as dotted columns; a name an override already uses
    gets a `summary.` prefix."""
    out = {}
    for name, value in flatten(summary).items():
        if isinstance(value, bool | int | float | str) or value is None:
            out[f"summary.{name}" if name in reserved else name] = value
    return out


def run_point(task: PointTask) -> dict[str, Any]:
    from infsim import api
    from infsim.scenario.load import validate_scenario

    t0 = time.perf_counter()
    row: dict[str, Any] = {"key": task.key, "status": "ok", "error": None}
    metrics: dict[str, Any] = {}
    try:
        scenario = validate_scenario(task.raw, task.source)
        result = api.run(scenario, task.base_dir, source=task.source)
        metrics = metric_columns(result.summary, set(task.overrides) | set(BASE_COLUMNS))
    except Exception as err:  # a failed point is a result: recorded, and the sweep goes on
        row.update(status="failed", error=f"{type(err).__name__}: {err}")
    row.update(
        wall_s=time.perf_counter() - t0,
        worker_pid=os.getpid(),
        worker_max_rss_bytes=_max_rss_bytes(),
        overrides_json=json.dumps(task.overrides, sort_keys=True),
    )
    row.update(task.overrides)
    row.update(metrics)
    return row


def failed_row(task: PointTask, error: BaseException) -> dict[str, Any]:
    """The row of a point whose worker could not even return (Ray task error and the like)."""
    return {
        "key": task.key,
        "status": "failed",
        "error": f"{type(error).__name__}: {error}",
        "wall_s": None,
        "overrides_json": json.dumps(task.overrides, sort_keys=True),
        **task.overrides,
    }
