"""Run one simulation split by replica over worker processes, and merge (`infsim.sim.split`
says which runs may be split and how requests are assigned).

    parent: assignment, groups ──fork──► worker w: simulate(part=w) → Parquet + records
            merge samples ◄──────────────── phase 1: samples, stamps, fleet moments, tallies
            decode-run shares ─────────────► phase 2: each cost model prices its share
            merge tables, fleet, counters ◄─ seconds per kind
            → SimOutput, as `simulate` returns it

Workers are forked (they inherit the resolved run and the trace, which do not pickle)
and write their tables to Parquet files in a temporary folder (inside the spool when
there is one); what they send back is small apart from the ITL samples. The merged
simulated time is the latest worker's, the events are summed.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from infsim.cost import coverage
from infsim.metrics.recorder import Recorder, RunSamples
from infsim.metrics.sink import release_memory
from infsim.scenario.run import ResolvedRun
from infsim.sim.engine import ProgressFn, SimOutput, simulate
from infsim.sim.fleet_records import FleetRecord
from infsim.sim.split import SplitPlan, plan_split, split_refusal
from infsim.sim.split_merge import merge_fleet, merge_requests, merge_speculative, merge_timeline
from infsim.sim.split_part import Moment, SplitPart
from infsim.speculative.summary import SpeculativeRun
from infsim.workload.trace import Trace


def choose_split(
    run: ResolvedRun, trace: Trace, replica_jobs: int
) -> tuple[SplitPlan | None, str | None]:
    """The split of an eligible run, or None and why the run stays serial."""
    note = split_refusal(run, replica_jobs)
    if note is None and "fork" not in mp.get_all_start_methods():
        note = "worker processes need the fork start method (not on this platform)"
    return (None, note) if note is not None else (plan_split(run, trace, replica_jobs), None)


def jobs_record(requested: int, plan: SplitPlan | None, note: str | None) -> dict[str, Any]:
    """`summary.simulation`'s record of a run asked to split by replica: the workers used
    (1: serial) and, when serial, why."""
    if plan is None:
        return {"replica_jobs": 1, "replica_jobs_requested": requested,
                "replica_jobs_note": f"serial: {note}"}  # fmt: skip
    return {"replica_jobs": len(plan.groups), "replica_jobs_requested": requested}


@dataclass
class PartResult:
    """What a worker sends back after its simulation (phase 1)."""

    simulated_s: float
    num_events: int
    samples: RunSamples
    stamps: Path  # .npy: the simulated time each timeline row was recorded
    fleet: FleetRecord  # members without their engines
    replica_ids: list[list[int]]  # per pool, its members' replica ids
    moments: list[Moment]
    speculative: SpeculativeRun | None
    tallies: list[coverage.ModelTally]
    choices: list[dict[str, Any]]


def _phase_one(
    out: SimOutput, part: SplitPart, collector: coverage.Collector, folder: Path
) -> PartResult:
    record = out.fleet
    replica_ids = [[m.replica.replica_id for m in pool.members] for pool in record.pools]
    for pool in record.pools:
        pool.pool = None  # resolved configs do not pickle: the parent has them
        for member in pool.members:
            member.replica = None  # an engine holds simpy state: not sent
    recorder = part.stamped
    stamps = folder / "stamps.npy"  # read back memory-mapped by the merge
    np.save(stamps, np.frombuffer(recorder.stamps, dtype=np.float64))
    return PartResult(out.simulated_s, out.num_events, recorder.samples(), stamps, record,
                      replica_ids, part.timeline.moments, out.speculative,
                      collector.tallies(), collector.choices)  # fmt: skip


def _work(conn: Connection, run: ResolvedRun, trace: Trace, part: SplitPart, folder: Path,
          board: Any = None) -> None:  # fmt: skip
    """A worker process: simulate its part, then price its share of the decode runs. With
    a progress `board` (shared doubles, two per worker) it posts (simulated s, requests
    ended) there as it goes."""
    progress = None
    if board is not None:
        slot = 2 * part.worker

        def progress(now_s: float, done: int) -> None:
            board[slot], board[slot + 1] = now_s, float(done)

    try:
        logging.getLogger("infsim.calibration").disabled = True  # the parent warns once
        with coverage.collecting() as collector:
            out = simulate(run, trace, progress, folder, part=part)
        conn.send(("ok", _phase_one(out, part, collector, folder)))
        del out
        shares = conn.recv()
        conn.send(("ok", collector.part_seconds(shares)))
    except BaseException as err:  # sent to the parent, which raises it
        conn.send(("error", err))
    finally:
        conn.close()


PROGRESS_POLL_S = 0.5
"""How often the parent reads the workers' progress board while it waits."""


def _watcher(board: Any, progress: ProgressFn) -> Callable[[], None]:
    """Report the board: the slowest worker's simulated time, all workers' ended requests."""

    def watch() -> None:
        now_s = min(board[0::2]) if len(board) else 0.0
        progress(now_s, int(sum(board[1::2])))

    return watch


def _receive(conn: Connection, process: mp.Process, index: int) -> Any:
    try:
        status, value = conn.recv()
    except EOFError:
        process.join()
        raise RuntimeError(
            f"replica worker {index} died without a result (exit code {process.exitcode}); "
            "killed by a signal or the out-of-memory killer? run with fewer --replica-jobs"
        ) from None
    if status == "error":
        raise value
    return value


def simulate_split(
    run: ResolvedRun,
    trace: Trace,
    plan: SplitPlan,
    spool_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> tuple[SimOutput, coverage.SplitCollector]:
    """`simulate` over `len(plan.groups)` forked workers, merged; with the run's cost
    models' tallies (for the `calibration` section). `progress` gets (the slowest worker's
    simulated seconds, requests ended in all workers) while they run."""
    wall0 = time.perf_counter()
    ctx = mp.get_context("fork")
    owner_of_request = plan.owner_of_request
    board = None if progress is None else ctx.Array("d", 2 * len(plan.groups), lock=False)
    with tempfile.TemporaryDirectory(prefix="split-", dir=spool_dir) as tmp:
        folders = [Path(tmp) / f"part-{w}" for w in range(len(plan.groups))]
        workers: list[tuple[Connection, mp.Process]] = []
        try:
            for w, group in enumerate(plan.groups):
                folders[w].mkdir()
                part = SplitPart(plan.replica_of, owner_of_request, w, group)
                mine, theirs = ctx.Pipe()
                process = ctx.Process(target=_work,
                                      args=(theirs, run, trace, part, folders[w], board),
                                      daemon=True)  # fmt: skip
                process.start()
                theirs.close()
                workers.append((mine, process))
            watch = None if progress is None else _watcher(board, progress)
            out, collector = _merge(workers, run, plan, folders, spool_dir, watch)
        finally:
            for conn, process in workers:
                conn.close()
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
    wall_s = time.perf_counter() - wall0
    return SimOutput(out.recorder, wall_s, out.simulated_s, out.num_events, out.fleet,
                     out.speculative), collector  # fmt: skip


def _merge(
    workers: list[tuple[Connection, mp.Process]],
    run: ResolvedRun,
    plan: SplitPlan,
    folders: list[Path],
    spool_dir: Path | None,
    watch: Callable[[], None] | None = None,
) -> tuple[SimOutput, coverage.SplitCollector]:
    recorder = Recorder(spool_dir)
    parts: list[PartResult] = []
    for w, (conn, process) in enumerate(workers):
        while watch is not None and not conn.poll(PROGRESS_POLL_S):
            watch()  # the results are taken in worker order (deterministic merge)
        result = _receive(conn, process, w)
        recorder.add_samples(result.samples)
        result.samples = None  # merged: let go
        parts.append(result)
    collector = coverage.SplitCollector([p.tallies for p in parts], parts[0].choices)
    for (conn, _), shares in zip(workers, collector.shares(recorder.decode_runs_by_width()),
                                 strict=True):  # fmt: skip
        conn.send(shares)
    collector.add_seconds([_receive(c, p, w) for w, (c, p) in enumerate(workers)])
    collector.warn()
    for _, process in workers:
        process.join()
    merge_requests([f / "requests.parquet" for f in folders], plan.owner_of_request,
                   recorder.requests)  # fmt: skip
    release_memory()
    stamps = [np.load(p.stamps, mmap_mode="r") for p in parts]
    merge_timeline([f / "timeline.parquet" for f in folders], stamps, recorder.steps)
    del stamps
    release_memory()
    recorder.indices = array("q")
    recorder.indices.frombytes(np.arange(plan.replica_of.size, dtype=np.int64).tobytes())
    recorder.num_done = plan.replica_of.size
    recorder.finish()
    simulated_s = max(p.simulated_s for p in parts)
    for pool in parts[0].fleet.pools:
        pool.pool = run.pools[pool.index]
    fleet = merge_fleet(parts[0].fleet, parts[0].replica_ids, [p.moments for p in parts],
                        plan.owner_of_replica, simulated_s)  # fmt: skip
    out = SimOutput(recorder, 0.0, simulated_s, sum(p.num_events for p in parts), fleet,
                    merge_speculative([p.speculative for p in parts]))  # fmt: skip
    return out, collector
