"""The result store: atomic point files, resume after SIGKILL with no lost and no
duplicated points, instant re-runs, failed points recorded while the sweep goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from infsim.sweep.job import load_base, run_sweep
from infsim.sweep.results import results_table
from infsim.sweep.spec import parse_sweep
from infsim.sweep.store import ResultStore
from tests.sweep.conftest import BASE, REPO

#: Columns that measure the machine, not the simulation.
MACHINE = ["wall_s", "worker_pid", "worker_max_rss_bytes", "simulation.wall_s"]
AXES = {"axes": {"engine.max_num_seqs": [4, 8, 16, 32], "deployment.tensor_parallel": [1, 2]}}


def _deterministic(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in MACHINE if c in table]).reset_index(drop=True)


def test_point_files_are_written_whole_and_only_stale_foreign_temporaries_removed(tmp_path):
    store = ResultStore(tmp_path)
    fresh = store.points_dir / ".tmp-123-abc-k0.parquet"  # another writer, mid-write
    stale = store.points_dir / ".tmp-124-abc-k0.parquet"  # a writer killed two hours ago
    mine = store.points_dir / f".tmp-{os.getpid()}-abc-k0.parquet"
    for tmp in (fresh, stale, mine):
        tmp.write_bytes(b"half a file")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    os.utime(mine, (old, old))
    ResultStore(tmp_path)
    ResultStore(tmp_path, create=False)  # a reader removes nothing at all
    assert sorted(p.name for p in store.points_dir.iterdir()) == sorted([fresh.name, mine.name])
    for tmp in (fresh, mine):
        tmp.unlink()
    store.write({"key": "k1", "status": "ok", "error": None, "x": [1, 2]})
    assert [p.name for p in store.points_dir.iterdir()] == ["k1.parquet"]
    assert store.read("k1")["x"] == "[1, 2]"


def test_opening_the_store_while_a_point_is_being_written_does_not_break_the_writer(
    tmp_path, monkeypatch
):
    """`infsim results` polled during a sweep used to delete the sweep's temporary between
    its write and its rename: FileNotFoundError in the sweep, points lost."""
    import infsim.sweep.store as store_module

    real_replace = os.replace

    def replace_after_a_poll(src, dst):
        ResultStore(tmp_path)  # another sweep opening the directory
        ResultStore(tmp_path, create=False)  # infsim results / report
        real_replace(src, dst)

    store = ResultStore(tmp_path)
    monkeypatch.setattr(store_module.os, "replace", replace_after_a_poll)
    for i in range(3):
        store.write({"key": f"k{i}", "status": "ok", "error": None})
    assert store.stored_keys() == {"k0", "k1", "k2"}


def test_rerunning_a_finished_sweep_runs_no_point(write_yaml, base_scenario: Path):
    ctx, _ = load_base(base_scenario)
    spec = parse_sweep(AXES, "axes.yaml")
    store = ResultStore(base_scenario.parent / "sweep")
    plan, first = run_sweep(ctx, spec, store)
    assert first.num_executed == len(plan.tasks) == 8
    assert first.num_cached == 0
    _, again = run_sweep(ctx, spec, store)
    assert again.num_executed == 0
    assert again.num_cached == 8
    # a grown sweep runs only the new points
    grown = parse_sweep({"axes": {**AXES["axes"], "engine.max_num_seqs": [4, 8, 16, 32, 64]}},
                        "axes.yaml")  # fmt: skip
    _, more = run_sweep(ctx, grown, store)
    assert more.num_executed == 2
    assert more.num_cached == 8


def test_a_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path: Path, write_yaml):
    good = tmp_path / "good.csv"
    good.write_text("arrival_s,num_prompt_tokens,num_output_tokens\n0,100,5\n0.5,100,5\n")
    raw = {k: v for k, v in BASE.items() if k != "workload"}
    raw["workload"] = {"trace": {"path": "good.csv"}}
    ctx, _ = load_base(write_yaml("base.yaml", raw))
    spec = parse_sweep({"axes": {"workload.trace.path": ["missing.csv", "good.csv"]}}, "f")
    store = ResultStore(tmp_path / "sweep")
    _, outcome = run_sweep(ctx, spec, store)
    assert outcome.num_executed == 2
    assert outcome.num_failed == 1
    table = results_table(store).set_index("workload.trace.path")
    assert table.loc["missing.csv", "status"] == "failed"
    assert "missing.csv" in table.loc["missing.csv", "error"]
    assert table.loc["good.csv", "status"] == "ok"
    assert table.loc["good.csv", "requests.completed"] == 2
    # a failed point is a finished point: not run again unless asked
    assert run_sweep(ctx, spec, store)[1].num_executed == 0
    assert run_sweep(ctx, spec, store, retry_failed=True)[1].num_executed == 1


def _finished(points: Path) -> set[str]:
    return {p.stem for p in points.glob("*.parquet") if not p.name.startswith(".")}


def _sweep_cmd(scenario: Path, axes: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "infsim", "sweep", str(scenario), "--axes", str(axes), "-o",
            str(out), "--executor", "serial", "--quiet"]  # fmt: skip


def test_sigkill_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path: Path, write_yaml):
    # Slow enough points (2,000 requests) that the kill lands mid-sweep.
    raw = {**BASE, "workload": {**BASE["workload"]}}
    raw["workload"]["synthetic"] = {**BASE["workload"]["synthetic"], "num_requests": 2000,
                                    "arrival": {"kind": "poisson", "rate_per_s": 40.0}}  # fmt: skip
    scenario = write_yaml("base.yaml", raw)
    axes = write_yaml("axes.yaml", AXES)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_sweep_cmd(scenario, axes, killed), env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    points = killed / "points"
    deadline = time.monotonic() + 120
    while not (points.is_dir() and len(_finished(points)) >= 2):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no point finished"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _finished(points)  # a temporary caught mid-write is not a finished point
    assert 2 <= len(done_before) < 8, "the kill must land mid-sweep"

    resumed = subprocess.run(_sweep_cmd(scenario, axes, killed), env=env, cwd=REPO,
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert f"{len(done_before)} already stored, {8 - len(done_before)} run now" in resumed.stderr
    subprocess.run(_sweep_cmd(scenario, axes, clean), env=env, cwd=REPO, capture_output=True,
                   check=True)  # fmt: skip

    store = ResultStore(killed)
    keys = [p["key"] for p in store.manifest()["points"]]
    assert sorted(store.stored_keys()) == sorted(keys)
    assert len(set(keys)) == 8
    assert not list(points.glob(".tmp-*"))
    for key in keys:  # finished work was kept, not redone; the rest ran after the kill
        assert (store.read(key)["worker_pid"] == proc.pid) is (key in done_before)
    pd.testing.assert_frame_equal(
        _deterministic(results_table(store)), _deterministic(results_table(ResultStore(clean)))
    )
    again = subprocess.run(_sweep_cmd(scenario, axes, killed), env=env, cwd=REPO,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert "8 already stored, 0 run now" in again.stderr


@pytest.mark.parametrize("bad", [{"deployment.tensor_parallel": ["two"]}])
def test_cli_rejects_a_bad_axis_value_with_exit_2_before_running(write_yaml, base_scenario, bad):
    from click.testing import CliRunner

    from infsim.cli import main

    axes = write_yaml("axes.yaml", {"axes": {"engine.max_num_seqs": [8], **bad}})
    out = base_scenario.parent / "out"
    result = CliRunner().invoke(main, ["sweep", str(base_scenario), "--axes", str(axes), "-o",
                                       str(out), "--quiet"])  # fmt: skip
    assert result.exit_code == 2
    assert "deployment.tensor_parallel='two'" in result.output
    assert "Traceback" not in result.output
    assert not (out / "points").exists() or not list((out / "points").iterdir())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_pool_workers_exit_when_the_sweep_is_sigkilled(tmp_path: Path, write_yaml):
    raw = {**BASE, "workload": {**BASE["workload"]}}
    raw["workload"]["synthetic"] = {**BASE["workload"]["synthetic"], "num_requests": 2000,
                                    "arrival": {"kind": "poisson", "rate_per_s": 40.0}}  # fmt: skip
    scenario, axes = write_yaml("base.yaml", raw), write_yaml("axes.yaml", AXES)
    cmd = _sweep_cmd(scenario, axes, tmp_path / "s")
    cmd[cmd.index("serial")] = "process"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*cmd, "-j", "2"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    points = tmp_path / "s" / "points"
    deadline = time.monotonic() + 120
    while not (points.is_dir() and _finished(points)):
        assert proc.poll() is None
        assert time.monotonic() < deadline, "no point finished"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    workers = {ResultStore(tmp_path / "s").read(k)["worker_pid"] for k in _finished(points)}
    assert proc.pid not in workers
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "orphaned pool workers"
