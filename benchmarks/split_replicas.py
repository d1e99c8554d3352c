"""Serial vs split-by-replica wall time of the fleet-1m case (issue 17, item 3).

    python benchmarks/split_replicas.py [--requests 100000] [--jobs 2] [--repeats 2]

Each run is a fresh process (`--child`), serial and split interleaved, tables streamed
to a temporary spool as `infsim run` does. Reported per run: the whole `run_resolved`
(simulation, merge, summary), the simulation's own wall time (`simulation.wall_s`: for
a split run, forking, the workers and the merge), CPU seconds of the parent process and
of the workers together (on a loaded machine the wall time says little; the workers'
CPU over the jobs is what each needs of a core of its own), peak RSS of the parent and
of the largest worker, and the load average when the run ended.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(num_requests: int, jobs: int) -> dict:
    from matrix import _base, _synthetic  # the fleet-1m case's scenario

    from infsim import api
    from infsim.scenario.load import validate_scenario

    raw = _base(_synthetic(num_requests, 200), deployment={"replicas": 16})
    resolved, trace = api.prepare(validate_scenario(raw, "split-bench"), ".")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as spool:
        result = api.run_resolved(resolved, trace, spool_dir=Path(spool),
                                  replica_jobs=jobs if jobs > 1 else None)  # fmt: skip
    sim = result.summary["simulation"]
    me = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "jobs": sim.get("replica_jobs", 1),
        "requests": result.summary["requests"]["total"],
        "run_s": time.perf_counter() - t0,
        "sim_wall_s": sim["wall_s"],
        "num_events": sim["num_events"],
        "parent_cpu_s": me.ru_utime + me.ru_stime,  # whole process, start-up included
        "workers_cpu_s": workers.ru_utime + workers.ru_stime,  # summed over the workers
        "parent_rss_mib": me.ru_maxrss / 1024,
        "worker_rss_mib": workers.ru_maxrss / 1024,  # the largest worker
        "load_avg_1m": os.getloadavg()[0],
        "p99_ttft_s": result.summary["latency_s"]["ttft"]["p99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=2, type=int, metavar=("REQUESTS", "JOBS"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    for _ in range(args.repeats):
        for jobs in (1, args.jobs):
            command = [sys.executable, __file__, "--child", str(args.requests), str(jobs)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
