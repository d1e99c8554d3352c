"""Run point tasks against a result store: skip what is stored, record each point as it
finishes, report progress. Used by `infsim sweep`, `capacity` and `optimize` alike.

A point file that exists but is damaged (empty, truncated, foreign) is not a finished
point: it is run again, and the run says so (`notify`, and `Outcome.recomputed`). A
failure to store a row (disk full) stops the job with an `InputError`; every row stored
before stays, and the executor's workers are shut down.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infsim.sweep.executors import Executor, SerialExecutor
from infsim.sweep.points import PointTask
from infsim.sweep.store import DamagedPointError, ResultStore
from infsim.sweep.worker import run_point


class Progress:
    """Receives counts as points finish; the default does nothing."""

    def start(self, total: int, cached: int) -> None:
        pass

    def advance(self, row: dict[str, Any]) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class Outcome:
    """What a call to `run_tasks` did. `executed` lists the keys run now, in finish order."""

    num_points: int = 0
    num_cached: int = 0
    num_failed: int = 0
    executed: list[str] = field(default_factory=list)
    recomputed: dict[str, str] = field(default_factory=dict)  # damaged key -> what was wrong

    @property
    def num_executed(self) -> int:
        return len(self.executed)


def pending_tasks(
    tasks: Sequence[PointTask],
    store: ResultStore,
    retry_failed: bool = False,
    damaged: dict[str, str] | None = None,
) -> list[PointTask]:
    """Tasks whose key has no valid stored point yet, each key once (first point wins).
    Keys whose point file is damaged are pending too, and are added to `damaged`."""
    valid, broken = store.scan()
    todo: dict[str, PointTask] = {}
    for task in tasks:
        if task.key in todo:
            continue
        if task.key in valid:
            if not retry_failed:
                continue
            try:
                if store.read(task.key)["status"] == "ok":
                    continue
            except DamagedPointError as err:
                broken.update(err.damaged)
        todo[task.key] = task
    if damaged is not None:
        damaged.update({k: why for k, why in broken.items() if k in todo})
    return list(todo.values())


def note(text: str) -> None:
    """The default `notify`: one line on stderr."""
    sys.stderr.write(f"infsim: note: {text}\n")
    sys.stderr.flush()


def run_tasks(
    tasks: Sequence[PointTask],
    store: ResultStore,
    executor: Executor | None = None,
    progress: Progress | None = None,
    *,
    retry_failed: bool = False,
    run_fn: Callable[[PointTask], dict[str, Any]] = run_point,
    notify: Callable[[str], None] = note,
) -> Outcome:
    executor = executor or SerialExecutor()
    progress = progress or Progress()
    damaged: dict[str, str] = {}
    todo = pending_tasks(tasks, store, retry_failed, damaged)
    unique = len({t.key for t in tasks})
    outcome = Outcome(num_points=unique, num_cached=unique - len(todo), recomputed=damaged)
    if damaged:
        shown = "; ".join(f"{k[:12]}…: {why}" for k, why in list(damaged.items())[:3])
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        notify(
            f"{store.points_dir}: {len(damaged)} damaged point file(s) will be recomputed "
            f"({shown}{more})"
        )
    progress.start(unique, outcome.num_cached)
    try:
        results = executor.map(run_fn, todo)
        # closing: if storing fails (disk full), the executor's workers are shut down
        with contextlib.closing(results) if hasattr(results, "close") else contextlib.nullcontext():
            for _task, row in results:
                store.write(row)
                outcome.executed.append(row["key"])
                outcome.num_failed += row["status"] != "ok"
                progress.advance(row)
    finally:
        progress.stop()
    return outcome
