"""Executors: run independent point tasks and yield (task, row) as each finishes.

- `serial`: in this process, in order (tests, debugging, a single point).
- `process`: a `concurrent.futures` process pool, one worker per core by default. Each
  worker holds one run at a time (peak RSS is recorded per row); lower `--jobs` when
  points are large.
- `ray`: one Ray task per point, on a local instance (`--address` unset: started here) or
  a cluster (`--address auto` or `ray://host:port`). Needs the `ray` extra, and infsim
  and any trace files at the same paths on every node.

A worker pool that breaks (a worker killed, e.g. out of memory) loses only the points in
flight: they are not recorded, and re-running the sweep runs them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from infsim.errors import InputError
from infsim.sweep.points import PointTask
from infsim.sweep.worker import failed_row

RunFn = Callable[[PointTask], dict[str, Any]]
EXECUTORS = ("process", "serial", "ray")


class PoolBrokenError(Exception):
    """The worker pool died; the points in flight were not recorded."""


class Executor(Protocol):
    def map(self, fn: RunFn, tasks: Sequence[PointTask]) -> Iterator[tuple[PointTask, dict]]: ...


class SerialExecutor:
    def map(self, fn: RunFn, tasks: Sequence[PointTask]) -> Iterator[tuple[PointTask, dict]]:
        for task in tasks:
            yield task, fn(task)


@dataclass
class ProcessExecutor:
    max_workers: int | None = None

    def map(self, fn: RunFn, tasks: Sequence[PointTask]) -> Iterator[tuple[PointTask, dict]]:
        if not tasks:
            return
        workers = min(self.max_workers or os.cpu_count() or 1, len(tasks))
        with ProcessPoolExecutor(
            max_workers=workers, initializer=exit_with_parent, initargs=(os.getpid(),)
        ) as pool:
            pending = {pool.submit(fn, t): t for t in tasks}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    err = future.exception()
                    if isinstance(err, BrokenProcessPool):
                        raise PoolBrokenError(
                            f"the worker pool broke ({err}); {len(pending) + 1} points in "
                            "flight were not recorded; re-run to resume (lower --jobs if "
                            "workers ran out of memory)"
                        )
                    yield task, (failed_row(task, err) if err else future.result())


def exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Pool-worker initializer: exit when the sweep process dies. A forked worker holds
    both ends of the pool's queue pipe, so it would never see EOF and would idle on as an
    orphan after the parent is SIGKILLed."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@dataclass
class RayExecutor:
    address: str | None = None
    num_cpus: int | None = None

    def map(self, fn: RunFn, tasks: Sequence[PointTask]) -> Iterator[tuple[PointTask, dict]]:
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
    if name == "serial":
        return SerialExecutor()
    if name == "process":
        return ProcessExecutor(max_workers=jobs)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=jobs)
    raise InputError(f"--executor {name!r}: unknown; allowed: {', '.join(EXECUTORS)}")
