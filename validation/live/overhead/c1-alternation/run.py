#!/usr/bin/env python3
# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""One request in flight, prompt lengths alternating on one warmed `base` server.

    python validation/live/overhead/c1-alternation/run.py [ROUNDS]   # from the repo root

Writes /tmp/c1exp/in<prompt>-s<seed>-r<round>/result.json and prints each run's per-request
TPOT (see README.md next to this file).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / "calibration" / "live"))
from common import bench_argv, run_bench  # noqa: E402
from matrix import BASE, warmup  # noqa: E402
from serve import DEFAULT_VENV, Server  # noqa: E402

OUT = Path("/tmp/c1exp")
CONDITIONS = [(128, 1), (512, 1), (128, 5), (512, 5), (2048, 1), (128, 9)]  # (prompt, seed)


def main(rounds: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    srv = Server(BASE, OUT / "server.log")
    srv.start()
    try:
        warmup(srv, DEFAULT_VENV)
        for r in range(rounds):
            for prompt, seed in CONDITIONS:
                d = OUT / f"in{prompt}-s{seed}-r{r}"
                d.mkdir(exist_ok=True)
                argv = bench_argv(DEFAULT_VENV, BASE.port, d, input_len=prompt, output_len=128,
                                  num_prompts=6, max_concurrency=1, seed=seed)  # fmt: skip
                run_bench(argv, d / "bench.log")
                res = json.loads((d / "result.json").read_text())
                rows = zip(res["latencies"], res["ttfts"], res["output_lens"], strict=True)
                tpot_ms = [(e2e - ttft) / (n - 1) * 1e3 for e2e, ttft, n in rows]
                print(prompt, seed, r, " ".join(f"{x:.2f}" for x in tpot_ms),
                      f"mean {statistics.mean(tpot_ms):.2f}", flush=True)  # fmt: skip
    finally:
        srv.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
