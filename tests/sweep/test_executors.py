"""Executors give the same rows as a serial run; Ray on a local instance when installed."""

from __future__ import annotations

import importlib.util
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from infsim.sweep.executors import ProcessExecutor, RayExecutor, SerialExecutor
from infsim.sweep.job import load_base, run_sweep
from infsim.sweep.points import plan
from infsim.sweep.results import results_table
from infsim.sweep.spec import parse_sweep
from infsim.sweep.store import ResultStore
from tests.sweep.test_store_resume import _deterministic

AXES = {
    "axes": {"workload.synthetic.arrival.rate_per_s": [2.0, 8.0], "engine.max_num_seqs": [4, 64]},
}


def _sweep(base_scenario: Path, name: str, executor) -> pd.DataFrame:
    ctx, _ = load_base(base_scenario)
    store = ResultStore(base_scenario.parent / name)
    _, outcome = run_sweep(ctx, parse_sweep(AXES, "axes.yaml"), store, executor)
    assert outcome.num_executed == 4
    assert outcome.num_failed == 0
    return results_table(store)


def test_process_pool_gives_the_serial_results(base_scenario: Path):
    serial = _sweep(base_scenario, "serial", SerialExecutor())
    pooled = _sweep(base_scenario, "pool", ProcessExecutor(max_workers=2))
    pd.testing.assert_frame_equal(_deterministic(serial), _deterministic(pooled))
    assert (pooled["worker_max_rss_bytes"] > 0).all()


def test_a_task_that_raises_outside_the_point_is_a_failed_row(base_scenario: Path):
    from infsim.sweep.runner import run_tasks

    ctx, _ = load_base(base_scenario)
    store = ResultStore(base_scenario.parent / "boom")
    tasks, _ = plan(ctx, parse_sweep(AXES, "axes.yaml"), "axes.yaml")
    outcome = run_tasks(tasks, store, ProcessExecutor(max_workers=2), run_fn=_boom)
    assert outcome.num_executed == 4
    assert outcome.num_failed == 4
    assert all(store.read(k)["error"] == "RuntimeError: boom" for k in store.stored_keys())


def _boom(task):
    raise RuntimeError("boom")


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed (optional extra: pip install 'infsim[ray]'); CI does not "
    "install it to stay fast",
)
def test_ray_on_a_local_instance_gives_the_serial_results(base_scenario: Path):
    import ray

    serial = _sweep(base_scenario, "serial", SerialExecutor())
    try:
        ray_rows = _sweep(base_scenario, "ray", RayExecutor(num_cpus=2))
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(_deterministic(serial), _deterministic(ray_rows))


def _kill_worker_for(task, marker_dir: str, times: int):
    """Run the point, but SIGKILL this worker the first `times` times it gets point 1."""
    import os
    import signal

    from infsim.sweep.worker import run_point

    if task.index == 1:
        marker = Path(marker_dir) / f"attempt-{os.getpid()}"
        marker.touch()
        if len(list(Path(marker_dir).iterdir())) <= times:
            os.kill(os.getpid(), signal.SIGKILL)
    return run_point(task)


@pytest.mark.parametrize("times", [1, 2])
def test_a_killed_pool_worker_is_retried_once_then_recorded_as_failed(
    base_scenario: Path, tmp_path: Path, times: int
):
    """A worker killed mid-point (the OOM killer) used to end the sweep with a traceback
    (BrokenProcessPool). Now: the points in flight are retried alone once; a point whose
    worker dies again is a failed row saying so; every other point is stored."""
    import functools

    from infsim.sweep.runner import run_tasks

    ctx, _ = load_base(base_scenario)
    store = ResultStore(tmp_path / "killed")
    tasks, _ = plan(ctx, parse_sweep(AXES, "axes.yaml"), "axes.yaml")
    markers = tmp_path / f"markers-{times}"
    markers.mkdir()
    run_fn = functools.partial(_kill_worker_for, marker_dir=str(markers), times=times)
    outcome = run_tasks(tasks, store, ProcessExecutor(max_workers=2), run_fn=run_fn)
    assert outcome.num_executed == 4
    assert store.stored_keys() == {t.key for t in tasks}
    victim = store.read(tasks[1].key)
    others = [store.read(t.key) for t in tasks if t.index != 1]
    assert all(row["status"] == "ok" for row in others)
    if times == 1:  # died once, then ran alone and finished
        assert victim["status"] == "ok"
        assert outcome.num_failed == 0
    else:
        assert victim["status"] == "failed"
        assert victim["error"].startswith("WorkerDiedError: the worker process running this")
        assert "retried alone" in victim["error"]
        assert outcome.num_failed == 1


def _process_executor_in_a_daemon() -> str:
    from infsim.errors import InputError
    from infsim.sweep.executors import make_executor

    try:
        make_executor("process", 2)
    except InputError as err:
        return str(err)
    return "no error"


def test_a_process_pool_inside_a_daemonic_worker_is_an_input_error() -> None:
    # A pool worker cannot start processes (multiprocessing's assertion, an internal
    # error before); the executor says so and what to use instead.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        message = pool.apply(_process_executor_in_a_daemon)
    assert "daemonic worker" in message
    assert "--executor serial" in message
