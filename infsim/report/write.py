"""Run directory: requests.parquet, timeline.parquet, fleet_timeline.parquet (replicas per
pool and state, queues, cost rate: docs/fleet.md), scenario.resolved.yaml, summary.json.

Parquet files are written without wall-clock metadata and with a fixed writer
configuration, so the same scenario and seed give byte-identical files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from infsim.errors import InputError


def _clean(obj: Any) -> Any:
    """NaN/inf → None so summary.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")


def write_run(
    out_dir: Path,
    *,
    requests: pa.Table,
    timeline: pa.Table,
    resolved_scenario: dict[str, Any],
    summary: dict[str, Any],
    fleet_timeline: pa.Table | None = None,
    disaggregation_timeline: pa.Table | None = None,
) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out_dir}: cannot create output directory: {err.strerror}") from None
    write_parquet(requests, out_dir / "requests.parquet")
    write_parquet(timeline, out_dir / "timeline.parquet")
    if fleet_timeline is not None:
        write_parquet(fleet_timeline, out_dir / "fleet_timeline.parquet")
    if disaggregation_timeline is not None:  # KV transfer queues (docs/disaggregation.md)
        write_parquet(disaggregation_timeline, out_dir / "disaggregation_timeline.parquet")
    (out_dir / "scenario.resolved.yaml").write_text(
        yaml.safe_dump(resolved_scenario, sort_keys=False, allow_unicode=True)
    )
    (out_dir / "summary.json").write_text(json.dumps(_clean(summary), indent=2) + "\n")
