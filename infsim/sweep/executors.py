"""Executors: run independent point tasks and yield (task, row) as each finishes.

- `serial`: in this process, in order (tests, debugging, a single point).
- `process`: a `concurrent.futures` process pool, one worker per core by default. Each
  worker holds one run at a time (peak RSS is recorded per row); lower `--jobs` when
  points are large.
- `ray`: one Ray task per point, on a local instance (`--address` unset: started here) or
  a cluster (`--address auto` or `ray://host:port`). Needs the `ray` extra, and infsim
  and any trace files at the same paths on every node.

A pool worker that dies (killed, e.g. by the out-of-memory killer) breaks the pool. The
points finished before are already recorded; the points in flight at that moment are
suspects: the pool is started again for the rest, and each suspect is then retried once
alone in a fresh one-worker pool, so that a point is blamed only for its own death. A
suspect whose worker dies again comes back as a failed row saying so; the sweep goes on.
The process pool keeps at most one point per worker in flight.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from infsim.errors import InputError
from infsim.sweep.points import PointTask
from infsim.sweep.store import HELD_LOCK_FDS
from infsim.sweep.worker import failed_row

RunFn = Callable[[PointTask], dict[str, Any]]
EXECUTORS = ("process", "serial", "ray")
MAX_JOBS = 4096


class WorkerDiedError(Exception):
    """The process running a point died without returning (a signal, the OOM killer)."""


class Executor(Protocol):
    def map(self, fn: RunFn, tasks: Iterable[PointTask]) -> Iterator[tuple[PointTask, dict]]: ...


class SerialExecutor:
    def map(self, fn: RunFn, tasks: Iterable[PointTask]) -> Iterator[tuple[PointTask, dict]]:
        for task in tasks:
            yield task, fn(task)


@dataclass
class ProcessExecutor:
    max_workers: int | None = None

    def map(self, fn: RunFn, tasks: Iterable[PointTask]) -> Iterator[tuple[PointTask, dict]]:
        queue = deque(tasks)
        if not queue:
            return
        workers = min(self.max_workers or os.cpu_count() or 1, len(queue))
        suspects: list[PointTask] = []
        while queue:  # a broken pool returns early; the next pool takes the rest
            yield from _pool_round(fn, queue, workers, suspects)
        for task in suspects:
            died: list[PointTask] = []
            yield from _pool_round(fn, deque([task]), 1, died)
            for again in died:
                yield (
                    again,
                    failed_row(
                        again,
                        WorkerDiedError(
                            "the worker process running this point died without a result "
                            "(killed by a signal or the out-of-memory killer), in the pool and "
                            "again when retried alone; lower --jobs if memory is short"
                        ),
                    ),
                )


def _pool_round(
    fn: RunFn, queue: deque[PointTask], workers: int, died: list[PointTask]
) -> Iterator[tuple[PointTask, dict]]:
    """Run tasks from `queue` on a fresh pool, at most `workers` in flight, yielding each
    result. If the pool breaks, the tasks in flight go to `died` and the round ends (the
    rest stay in `queue`)."""
    pool = ProcessPoolExecutor(
        max_workers=workers, initializer=worker_init, initargs=(os.getpid(),)
    )
    in_flight: dict[Future, PointTask] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < workers:
                task = queue.popleft()
                try:
                    in_flight[pool.submit(fn, task)] = task
                except BrokenProcessPool:
                    queue.appendleft(task)
                    died.extend(in_flight.values())
                    return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = in_flight.pop(future)
                err = future.exception()
                if isinstance(err, BrokenProcessPool):
                    died.append(task)
                    broken = True
                else:
                    yield task, (failed_row(task, err) if err else future.result())
            if broken:
                died.extend(in_flight.values())  # they die with the pool
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def worker_init(parent_pid: int) -> None:
    """Pool-worker initializer: drop the inherited copy of the store's writer lock (only
    the sweep process holds it), and exit when the sweep process dies."""
    for fd in list(HELD_LOCK_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    HELD_LOCK_FDS.clear()
    exit_with_parent(parent_pid)


def exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Exit when the sweep process dies. A forked worker holds both ends of the pool's
    queue pipe, so it would never see EOF and would idle on as an orphan after the parent
    is SIGKILLed."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@dataclass
class RayExecutor:
    address: str | None = None
    num_cpus: int | None = None

    def map(self, fn: RunFn, tasks: Iterable[PointTask]) -> Iterator[tuple[PointTask, dict]]:
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(address=self.address, **kwargs)
        remote = ray.remote(num_cpus=1)(fn)
        pending = {remote.remote(t): t for t in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    yield task, ray.get(ref)
                except Exception as err:
                    yield task, failed_row(task, err)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(
            "--executor ray: ray is not installed; pip install 'infsim[ray]' (or use "
            "--executor process)"
        ) from None
    return ray


def make_executor(name: str, jobs: int | None = None, address: str | None = None) -> Executor:
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        raise InputError(f"--jobs {jobs}: allowed 1 to {MAX_JOBS} workers")
    if name == "serial":
        return SerialExecutor()
    if name == "process":
        if multiprocessing.current_process().daemon:
            raise InputError(
                "--executor process: this process is a daemonic worker (e.g. of a "
                "multiprocessing.Pool), which cannot start worker processes; use "
                "--executor serial here (or ray)"
            )
        return ProcessExecutor(max_workers=jobs)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=jobs)
    raise InputError(f"--executor {name!r}: unknown; allowed: {', '.join(EXECUTORS)}")
