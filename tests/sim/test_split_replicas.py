"""A run split by replica over worker processes equals the serial run (issue 17, item 3).

Each scenario is run serially and with `replica_jobs`; the requests, timeline and fleet
timeline tables must be equal, and the summaries equal except the wall time, the
`replica_jobs` record, the calibration shares and the proposer time (float sums of
per-worker tallies: equal to ~1e-15, docs/fleet.md)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infsim import api
from infsim.routing.load_aware import build_router
from infsim.scenario.run import resolved_run
from infsim.sim.split import assign_replicas, partition, split_refusal

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
ONLY_SPLIT = {"replica_jobs", "replica_jobs_requested", "wall_s"}
SUMS_OF_PARTS = (".calibration", ".speculative.draft_time_s", ".speculative.draft_time_share")
"""Float sums the cost models accumulate step by step over all their replicas: the split
run adds the workers' sums, which may differ from the serial order's in the last bits."""


def _prepare(name: str, overrides: list[str]):
    spec = api.load_scenario(SCENARIOS / f"{name}.yaml", overrides)
    return api.prepare(spec, SCENARIOS)


def _compare(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two summaries differ (calibration shares within 1e-12 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in a.keys() | b.keys():
            if path == ".simulation" and key in ONLY_SPLIT:
                continue
            out += _compare(a.get(key), b.get(key), f"{path}.{key}")
        return out
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return []
        if path.startswith(SUMS_OF_PARTS):
            return [] if math.isclose(a, b, rel_tol=1e-12) else [path]
    return [] if a == b else [path]


def _serial_and_split(name: str, overrides: list[str], jobs: int = 2, **kwargs: Any):
    resolved, trace = _prepare(name, overrides)
    serial = api.run_resolved(resolved, trace, **kwargs)
    split = api.run_resolved(resolved, trace, replica_jobs=jobs, **kwargs)
    return serial, split


def _assert_same(serial: api.RunResult, split: api.RunResult, jobs: int = 2) -> None:
    assert split.summary["simulation"]["replica_jobs"] == jobs
    assert split.requests.equals(serial.requests)
    assert split.timeline.equals(serial.timeline)
    assert split.fleet_timeline.equals(serial.fleet_timeline)
    assert _compare(serial.summary, split.summary) == []


FAST = ["workload.synthetic.num_requests=600", "workload.synthetic.arrival.rate_per_s=30"]


@pytest.mark.parametrize(
    ("name", "overrides", "jobs"),
    [
        # Four replicas in turn; two workers of two replicas each.
        ("quickstart", ["deployment.replicas=4", *FAST], 2),
        # Random routing: the replayed router draws the serial run's numbers; three
        # workers over five replicas (groups of unequal size).
        ("quickstart", ["deployment.replicas=5", "router.kind=random", *FAST], 3),
        # Two pools (H100 and L40S) behind one round-robin list: a dynamic-looking fleet
        # (the fleet timeline is sampled every second) that is static.
        ("heterogeneous-fleet",
         ["router.kind=round_robin", "workload.synthetic.num_requests=800"], 2),
        # More workers than busy replicas: the third worker simulates no request.
        ("quickstart", ["deployment.replicas=3", "workload.synthetic.num_requests=2"], 3),
        # Host speed noise: each replica's windows are seeded by its id.
        ("quickstart", ["deployment.replicas=4", "hardware.speed_noise.cv=0.3",
                        "hardware.speed_noise.correlation_s=2", *FAST], 2),
    ],
)  # fmt: skip
def test_split_equals_serial(name: str, overrides: list[str], jobs: int) -> None:
    serial, split = _serial_and_split(name, overrides, jobs)
    _assert_same(serial, split, jobs)
    assert serial.requests.column("replica_id").to_numpy().max() >= min(jobs - 1, 1)


def test_split_equals_serial_speculative_calibrated() -> None:
    """EAGLE on the calibrated table: acceptance draws per replica, the speculative counters
    summed, the calibration coverage from every worker's tallies."""
    overrides = ["workload.max_concurrency=null", "deployment.replicas=3",
                 "workload.synthetic.num_requests=150",
                 "workload.synthetic.arrival.rate_per_s=20"]  # fmt: skip
    serial, split = _serial_and_split("speculative-eagle", overrides)
    _assert_same(serial, split)
    assert split.summary["speculative"]["num_verifies"] > 0
    assert split.summary["calibration"]["coverage"]["measured"] > 0


def test_split_streamed_to_a_spool(tmp_path: Path) -> None:
    """With a spool directory (as `infsim run`) the merged tables are streamed there."""
    resolved, trace = _prepare("quickstart", ["deployment.replicas=4", *FAST])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    serial = api.run_resolved(resolved, trace, spool_dir=tmp_path / "a")
    split = api.run_resolved(resolved, trace, spool_dir=tmp_path / "b", replica_jobs=2)
    assert split.request_table.spool_path == tmp_path / "b" / "requests.parquet"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "requests.parquet",
        "timeline.parquet",
    ]
    _assert_same(serial, split)


def test_ineligible_run_is_serial_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    resolved, trace = _prepare(
        "quickstart", ["deployment.replicas=2", "router.kind=least_outstanding_requests", *FAST]
    )
    with caplog.at_level(logging.WARNING, logger="infsim.split"):
        result = api.run_resolved(resolved, trace, replica_jobs=2)
    sim = result.summary["simulation"]
    assert sim["replica_jobs"] == 1
    assert sim["replica_jobs_note"].startswith("serial: router least_outstanding_requests")
    assert "serial run: router least_outstanding_requests" in caplog.text


def _run(name: str, overrides: list[str]):
    return resolved_run(_prepare(name, overrides)[0])


@pytest.mark.parametrize(
    ("name", "overrides", "reason"),
    [
        ("quickstart", ["deployment.replicas=4"], None),
        ("quickstart", ["deployment.replicas=4", "router.kind=random"], None),
        ("heterogeneous-fleet", ["router.kind=round_robin"], None),
        ("heterogeneous-fleet", [], "router least_outstanding_tokens reads replica load"),
        ("quickstart", ["deployment.replicas=4", "router.kind=power_of_two"],
         "router power_of_two"),
        ("quickstart", ["deployment.replicas=1"], "1 replica"),
        ("speculative-eagle", ["deployment.replicas=2"], "a closed-loop client"),
        ("autoscaling-burst", ["router.kind=round_robin"], "autoscaling"),
        ("spot-failures", ["router.kind=round_robin"], "failures or spot"),
        ("disaggregated-1p1d", ["router.kind=round_robin"], "disaggregated prefill"),
    ],
)  # fmt: skip
def test_eligibility(name: str, overrides: list[str], reason: str | None) -> None:
    refusal = split_refusal(_run(name, overrides), 2)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.startswith(reason)


def test_one_job_is_not_a_split() -> None:
    assert split_refusal(_run("quickstart", ["deployment.replicas=4"]), 1).startswith(
        "replica_jobs = 1"
    )


def test_assignment_replays_the_router() -> None:
    """Round robin: i mod n. Random: the draws of the router the serial run builds."""
    run = _run("quickstart", ["deployment.replicas=3", "workload.synthetic.num_requests=50"])
    _, trace = _prepare("quickstart", ["workload.synthetic.num_requests=50"])
    assert assign_replicas(run, trace).tolist() == [i % 3 for i in range(50)]
    run = _run("quickstart", ["deployment.replicas=3", "router.kind=random"])
    router = build_router(run.router, run.seed)

    class View:
        num_replicas = 3

    expected = [router.route(None, View(), 0.0) for _ in range(50)]
    assert assign_replicas(run, trace).tolist() == expected


def test_partition_balances_requests_in_contiguous_groups() -> None:
    replica_of = np.array([0] * 10 + [1] * 10 + [2] * 10 + [3] * 10)
    assert partition(replica_of, 4, 2) == [range(0, 2), range(2, 4)]
    assert partition(replica_of, 4, 8) == [range(i, i + 1) for i in range(4)]
    # An idle replica still belongs to a group; no group is empty.
    assert partition(np.array([0, 0, 0, 0, 1]), 3, 2) == [range(0, 1), range(1, 3)]
    skewed = np.array([0] * 90 + [1] * 5 + [2] * 5)
    assert partition(skewed, 3, 2) == [range(0, 1), range(1, 3)]


def test_a_split_run_reports_progress_from_its_workers(monkeypatch) -> None:
    from infsim.sim import split_run

    monkeypatch.setattr(split_run, "PROGRESS_POLL_S", 0.001)
    overrides = ["deployment.replicas=4", "workload.synthetic.num_requests=1500"]
    resolved, trace = _prepare("quickstart", overrides)
    serial = api.run_resolved(resolved, trace)
    seen: list[tuple[float, int]] = []
    split = api.run_resolved(resolved, trace, replica_jobs=2,
                             progress=lambda now, done: seen.append((now, done)))  # fmt: skip
    _assert_same(serial, split)
    assert seen  # reported while the workers ran
    done = [d for _, d in seen]
    assert done == sorted(done)
    assert 0 <= done[-1] <= trace.num_requests
    assert all(0.0 <= now <= split.summary["simulation"]["simulated_s"] for now, _ in seen)


def test_progress_reports_do_not_change_a_run() -> None:
    """A shown run and a quiet one give the same outputs: the progress report is driven by
    request ends, not by events of its own (a watcher process moved the run's end time,
    and with it the fleet timeline's closing row)."""
    overrides = ["deployment.replicas=4", "workload.synthetic.num_requests=1500"]
    resolved, trace = _prepare("quickstart", overrides)
    quiet = api.run_resolved(resolved, trace)
    seen: list[tuple[float, int]] = []
    shown = api.run_resolved(resolved, trace, progress=lambda now, done: seen.append((now, done)))
    assert shown.requests.equals(quiet.requests)
    assert shown.timeline.equals(quiet.timeline)
    assert shown.fleet_timeline.equals(quiet.fleet_timeline)
    assert _compare(quiet.summary, shown.summary) == []
    assert 50 <= len(seen) <= 250  # about every 1 % of the span, not per request
    assert seen[-1][1] == trace.num_requests
    assert [d for _, d in seen] == sorted(d for _, d in seen)
