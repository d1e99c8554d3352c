"""Run point tasks against a result store: skip what is stored, record each point as it
finishes, report progress. Used by `infsim sweep`, `capacity` and `optimize` alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infsim.sweep.executors import Executor, SerialExecutor
from infsim.sweep.points import PointTask
from infsim.sweep.store import ResultStore
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

    @property
    def num_executed(self) -> int:
        return len(self.executed)


def pending_tasks(
    tasks: Sequence[PointTask], store: ResultStore, retry_failed: bool = False
) -> list[PointTask]:
    """Tasks whose key is not stored yet, each key once (first point wins)."""
    stored = store.stored_keys()
    todo: dict[str, PointTask] = {}
    for task in tasks:
        if task.key in todo:
            continue
        if task.key in stored and not (retry_failed and store.read(task.key)["status"] != "ok"):
            continue
        todo[task.key] = task
    return list(todo.values())


def run_tasks(
    tasks: Sequence[PointTask],
    store: ResultStore,
    executor: Executor | None = None,
    progress: Progress | None = None,
    *,
    retry_failed: bool = False,
    run_fn: Callable[[PointTask], dict[str, Any]] = run_point,
) -> Outcome:
    executor = executor or SerialExecutor()
    progress = progress or Progress()
    todo = pending_tasks(tasks, store, retry_failed)
    unique = len({t.key for t in tasks})
    outcome = Outcome(num_points=unique, num_cached=unique - len(todo))
    progress.start(unique, outcome.num_cached)
    try:
        for _task, row in executor.map(run_fn, todo):
            store.write(row)
            outcome.executed.append(row["key"])
            outcome.num_failed += row["status"] != "ok"
            progress.advance(row)
    finally:
        progress.stop()
    return outcome
