"""`infsim run --replica-jobs N` (issue 17, item 3): the same published run as the serial
one where the scenario allows a split, and a one-line note plus the summary's record of
why where it does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from infsim.cli import main

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = str(REPO / "scenarios" / "quickstart.yaml")
SMALL = ["--set", "workload.synthetic.num_requests=300", "--set", "deployment.replicas=3",
         "--quiet", "--no-report"]  # fmt: skip


def _run(out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, ["run", QUICKSTART, "-o", str(out), *SMALL, *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def test_replica_jobs_publishes_the_serial_run(tmp_path: Path) -> None:
    serial = _run(tmp_path / "serial")
    split = _run(tmp_path / "split", "--replica-jobs", "2")
    assert split["simulation"].pop("replica_jobs") == 2
    assert split["simulation"].pop("replica_jobs_requested") == 2
    for summary in (serial, split):
        summary["simulation"].pop("wall_s")
    assert split == serial
    for name in ("requests.parquet", "timeline.parquet", "fleet_timeline.parquet"):
        assert pq.read_table(tmp_path / "split" / name).equals(
            pq.read_table(tmp_path / "serial" / name)
        ), name
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(
        p.name for p in (tmp_path / "serial").iterdir()
    )


def test_replica_jobs_on_a_load_aware_router_runs_serially(tmp_path: Path) -> None:
    """In a fresh process: the note reaches stderr without any logging set up."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "infsim", "run", QUICKSTART, "-o", str(out), *SMALL,
            "--replica-jobs", "4", "--set", "router.kind=least_kv_usage"]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "replica_jobs" in line]
    assert notes == [
        "replica_jobs=4: serial run: router least_kv_usage reads replica load at each "
        "arrival; only round_robin or random can be replayed ahead"
    ]
    sim = json.loads((out / "summary.json").read_text())["simulation"]
    assert sim["replica_jobs"] == 1
    assert sim["replica_jobs_note"].startswith("serial: router least_kv_usage")


def test_replica_jobs_must_be_positive(tmp_path: Path) -> None:
    args = ["run", QUICKSTART, "-o", str(tmp_path / "x"), *SMALL, "--replica-jobs", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
