"""Run directory: requests.parquet, timeline.parquet, fleet_timeline.parquet (replicas per
pool and state, queues, cost rate: docs/fleet.md), scenario.resolved.yaml, summary.json,
and last `run-complete.json` (each file's size and SHA-256; readers require it and check
them: `infsim.report.read`).

Parquet files are written without wall-clock metadata and with a fixed writer
configuration, so the same scenario and seed give byte-identical files.

The directory is published as a whole (`infsim.report.atomic`): written into a temporary
sibling and renamed into place, replacing an earlier run entirely; killed or out of disk
at any point, the directory holds the earlier complete run or the new complete run, never
a mix (docs/outputs.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from infsim.metrics.sink import TableSink, write_chunks
from infsim.report.atomic import check_target, publish_dir

MARKER = "run-complete.json"
"""Written last; lists every file of the run with its size and SHA-256."""
MARKER_FORMAT = "infsim-run"
MARKER_VERSION = 1
RUN_FILES = (
    "requests.parquet",
    "timeline.parquet",
    "fleet_timeline.parquet",
    "disaggregation_timeline.parquet",
    "scenario.resolved.yaml",
    "summary.json",
)
REPLACEABLE = (*RUN_FILES, MARKER, "report.html")
"""What a directory may hold for `infsim run` to replace it (an earlier run and the report
`infsim report` wrote into it); anything else and the run is refused before it starts."""


def _clean(obj: Any) -> Any:
    """NaN/inf → None so summary.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_parquet(table: pa.Table, path: Path) -> None:
    write_chunks([table], table.schema, path)


def check_run_dir(out_dir: Path) -> Path:
    """Refuse, before a run starts, an output directory it could not replace safely (a
    link, a file, a directory holding other files); the absolute path."""
    return check_target(out_dir, REPLACEABLE)


def file_digest(path: Path) -> dict[str, Any]:
    """{'bytes', 'sha256'} of a file, read in chunks."""
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": sha.hexdigest()}


def marker_text(directory: Path, names: list[str]) -> str:
    files = {name: file_digest(directory / name) for name in names}
    body = {"format": MARKER_FORMAT, "version": MARKER_VERSION, "files": files}
    return json.dumps(body, indent=2) + "\n"


def write_run(
    out_dir: Path,
    *,
    requests: TableSink,
    timeline: TableSink,
    resolved_scenario: dict[str, Any],
    summary: dict[str, Any],
    fleet_timeline: pa.Table | None = None,
    disaggregation_timeline: pa.Table | None = None,
) -> Path:
    """Publish the run directory (module docstring); its absolute path."""

    def parquet(table: pa.Table) -> Callable[[Path], None]:
        return lambda path: write_parquet(table, path)

    def text(content: str) -> Callable[[Path], None]:
        return lambda path: _write_new(path, content)

    files: list[tuple[str, Callable[[Path], None]]] = [
        ("requests.parquet", requests.write_to),
        ("timeline.parquet", timeline.write_to),
    ]
    if fleet_timeline is not None:
        files.append(("fleet_timeline.parquet", parquet(fleet_timeline)))
    if disaggregation_timeline is not None:  # KV transfer queues (docs/disaggregation.md)
        files.append(("disaggregation_timeline.parquet", parquet(disaggregation_timeline)))
    resolved_text = yaml.safe_dump(resolved_scenario, sort_keys=False, allow_unicode=True)
    files.append(("scenario.resolved.yaml", text(resolved_text)))
    files.append(("summary.json", text(json.dumps(_clean(summary), indent=2) + "\n")))
    names = [name for name, _ in files]
    files.append((MARKER, lambda path: _write_new(path, marker_text(path.parent, names))))
    return publish_dir(out_dir, files, replaceable=REPLACEABLE)


def _write_new(path: Path, content: str) -> None:
    with path.open("x", encoding="utf-8") as handle:  # a fresh name: never through a link
        handle.write(content)
