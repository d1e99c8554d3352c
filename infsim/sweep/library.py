"""Sweeps and searches from Python (notebooks): the CLI's jobs as functions.

from infsim.sweep.library import sweep, capacity
table = sweep("scenarios/sweep-llama8b.yaml", {"hardware.gpu": ["h100-sxm", "h200"]},
              "runs/my-sweep")
cap = capacity("scenarios/sweep-llama8b.yaml", SLOTarget(ttft_p99_s=0.5), "runs/cap")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from infsim.sweep.capacity import CapacityReport, find_capacity
from infsim.sweep.executors import make_executor
from infsim.sweep.job import load_base, run_sweep
from infsim.sweep.results import results_table
from infsim.sweep.search import SLOTarget
from infsim.sweep.spec import parse_sweep
from infsim.sweep.store import ResultStore


def sweep(  # noqa: PLR0913
    scenario: Path | str,
    axes: dict[str, list[Any]],
    out_dir: Path | str,
    *,
    mode: str = "grid",
    constraints: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
    executor: str = "process",
    jobs: int | None = None,
    force: bool = False,
    max_points: int | None = None,
) -> pd.DataFrame:
    """Run (or resume) a sweep and return its results table, one row per point.
    `force`: use a directory holding another job's results; `max_points`: raise the
    grid-size limit (see docs/sweeps.md)."""
    ctx, _ = load_base(Path(scenario), overrides)
    spec = parse_sweep({"mode": mode, "axes": axes, "constraints": list(constraints)}, "axes")
    store = ResultStore(Path(out_dir))
    run_sweep(ctx, spec, store, make_executor(executor, jobs), force=force, max_points=max_points)
    return results_table(store)


def capacity(
    scenario: Path | str,
    target: SLOTarget,
    out_dir: Path | str,
    *,
    overrides: tuple[str, ...] = (),
    rel_tol: float = 0.02,
    force: bool = False,
) -> CapacityReport:
    """Highest arrival rate meeting `target` (see `infsim.sweep.capacity`)."""
    ctx, _ = load_base(Path(scenario), overrides)
    return find_capacity(ctx, target, ResultStore(Path(out_dir)), rel_tol=rel_tol, force=force)
