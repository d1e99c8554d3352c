#!/usr/bin/env python3
# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""How much CPU the front end (vLLM's API server + the benchmark client) spends per request
and per streamed token: the work that shares the machine's second core and is served one
piece at a time.

    python validation/live/overhead/frontend-cpu/run.py [ROUNDS]   # from the repo root

One warmed `base` server (as in `validation/live/`). For each condition the script samples,
every 20 ms, the CPU seconds of the API server process, the engine-core process (its
child) and the benchmark client, and keeps the window in which the engine core is busy
(the benchmark's own run, not the client's start-up and dataset generation). Each
condition runs at two request counts; the difference of the window's CPU divided by the
difference of the counts is the CPU per request, free of fixed costs. Writes
cpu.csv (one row per run) next to this file and prints the per-request figures.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
sys.path.insert(0, str(REPO / "calibration" / "live"))
from common import bench_argv, proc_stat, proc_table  # noqa: E402
from matrix import BASE, warmup  # noqa: E402
from serve import DEFAULT_VENV, Server  # noqa: E402

OUT = Path("/tmp/fecpu")
# (name, prompt tokens, output tokens, concurrency)
CONDITIONS = [
    ("intake-in128", 128, 1, 1),
    ("intake-in1024", 1024, 1, 1),
    ("stream-c4", 128, 128, 4),
    ("stream-c16", 128, 128, 16),
    ("stream-c64", 128, 64, 64),
]
COUNTS = (16, 80)


def cpu_s(pid: int) -> float:
    stat = proc_stat(pid)
    return stat[1] if stat is not None else float("nan")


def engine_core(server_pid: int) -> int:
    """The busiest child of the API server process (the engine core)."""
    kids = [(cpu, pid) for pid, (ppid, cpu) in proc_table().items() if ppid == server_pid]
    return max(kids)[1]


def sample(api: int, core: int, client_pid_box: list[int], stop: threading.Event, rows: list):
    while not stop.is_set():
        client = client_pid_box[0]
        rows.append((time.monotonic(), cpu_s(api), cpu_s(core), cpu_s(client) if client else 0.0))
        time.sleep(0.02)


def window(rows: list) -> tuple[float, float, float, float]:
    """(seconds, api cpu, core cpu, client cpu) over the span where the engine core is busy
    (> 50 % of a core between samples)."""
    busy = [i for i in range(1, len(rows)) if (rows[i][2] - rows[i - 1][2])
            > 0.5 * (rows[i][0] - rows[i - 1][0])]  # fmt: skip
    a, b = busy[0] - 1, busy[-1]
    return tuple(rows[b][k] - rows[a][k] for k in range(4))  # type: ignore[return-value]


def main(rounds: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    srv = Server(BASE, OUT / "server.log")
    srv.start()
    results = []
    try:
        warmup(srv, DEFAULT_VENV)
        api = srv.pid
        core = engine_core(api)
        print(f"api server pid {api}, engine core pid {core}", flush=True)
        for r in range(rounds):
            for name, prompt, output, conc in CONDITIONS:
                for n in COUNTS:
                    d = OUT / f"{name}-n{n}-r{r}"
                    d.mkdir(exist_ok=True)
                    argv = bench_argv(DEFAULT_VENV, BASE.port, d, input_len=prompt,
                                      output_len=output, num_prompts=n, max_concurrency=conc,
                                      seed=1 + r)  # fmt: skip
                    rows: list = []
                    box = [0]
                    stop = threading.Event()
                    t = threading.Thread(target=sample, args=(api, core, box, stop, rows))
                    t.start()
                    with open(d / "bench.log", "w") as f:
                        p = subprocess.Popen(argv, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
                        box[0] = p.pid
                        p.wait()
                    stop.set()
                    t.join()
                    wall, api_s, core_s, client_s = window(rows)
                    row = {"condition": name, "round": r, "num_prompts": n,
                           "prompt": prompt, "output": output, "concurrency": conc,
                           "window_s": round(wall, 3), "api_cpu_s": round(api_s, 3),
                           "core_cpu_s": round(core_s, 3),
                           "client_cpu_s": round(client_s, 3)}  # fmt: skip
                    results.append(row)
                    print(row, flush=True)
    finally:
        srv.stop()
    with open(HERE / "cpu.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
