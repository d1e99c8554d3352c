"""kill -9 of a sweep at random moments (issue 15): after every kill the store holds only
whole, valid points (and a whole sweep.json or none), nothing finished is lost or redone,
and resuming ends with the table of an uninterrupted sweep.

The moments are drawn from a seeded generator (`INFSIM_KILL_SEED`, default 15) so that a
failure can be replayed; `INFSIM_KILL_ROUNDS` (default 4) sets how many kills.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from infsim.sweep.results import results_table
from infsim.sweep.store import MANIFEST, ResultStore
from tests.sweep.conftest import BASE, REPO
from tests.sweep.test_store_resume import _deterministic

ROUNDS = int(os.environ.get("INFSIM_KILL_ROUNDS", "4"))
SEED = int(os.environ.get("INFSIM_KILL_SEED", "15"))
AXES = {"axes": {"engine.max_num_seqs": [4, 8, 16], "deployment.tensor_parallel": [1, 2],
                 "seed": [1, 2]}}  # fmt: skip


def _command(scenario: Path, axes: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "infsim", "sweep", str(scenario), "--axes", str(axes), "-o",
            str(out), "-j", "2", "--quiet"]  # fmt: skip


def _check_whole(out: Path) -> dict[str, int]:
    """Every stored point is whole and valid; sweep.json is whole or absent. Returns
    {key: worker pid} of the stored points."""
    store = ResultStore(out, create=False) if out.is_dir() else None
    if store is None:
        return {}
    if (out / MANIFEST).exists():
        assert store.manifest()["kind"] == "sweep"  # whole, or read_json would refuse it
    valid, damaged = store.scan()
    assert damaged == {}, f"damaged point files after a kill: {damaged}"
    pids = {}
    for key in valid:
        row = store.read(key)  # full read: one row, key matches, status ok or failed
        assert row["status"] == "ok", row["error"]
        assert row["latency_s.ttft.p99"] is not None
        pids[key] = row["worker_pid"]
    return pids


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_table(
    tmp_path: Path, write_yaml
):
    raw = {**BASE, "workload": {**BASE["workload"]}}
    raw["workload"]["synthetic"] = {**BASE["workload"]["synthetic"], "num_requests": 600,
                                    "arrival": {"kind": "poisson", "rate_per_s": 40.0}}  # fmt: skip
    scenario, axes = write_yaml("base.yaml", raw), write_yaml("axes.yaml", AXES)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(SEED)
    stored: dict[str, int] = {}
    for _ in range(ROUNDS):
        proc = subprocess.Popen(_command(scenario, axes, killed), env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.2, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = _check_whole(killed)
        for key, pid in stored.items():  # nothing finished was lost, nor run again
            assert now.get(key) == pid
        stored = now
    resumed = subprocess.run(_command(scenario, axes, killed), env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(stored)} already stored, {12 - len(stored)} run now" in resumed.stderr
    final = _check_whole(killed)
    assert len(final) == 12
    assert all(final[k] == pid for k, pid in stored.items())
    done = subprocess.run(_command(scenario, axes, clean), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(
        _deterministic(results_table(ResultStore(killed))),
        _deterministic(results_table(ResultStore(clean))),
    )
