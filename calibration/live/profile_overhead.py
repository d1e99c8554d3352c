#!/usr/bin/env python3
# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""Measured engine step times per batch composition, for fitting infsim's per-step overhead.

    python calibration/live/profile_overhead.py profile     # live: torch-profile a light load
    python calibration/live/profile_overhead.py extract TRACE.json.gz   # re-parse a trace
    python calibration/live/profile_overhead.py tpot [SESSION]  # TPOT per concurrency, KV length

`profile` starts a server with vLLM's torch profiler (stack traces off, shapes on, detailed
step annotations on), POSTs /start_profile, sends closed-loop request batches of known
lengths at concurrency 1, 4 and 16 (128 prompt / 64 output tokens each), POSTs
/stop_profile, and from the engine worker's trace extracts every `user_annotation` step
event `execute_<T>_context_<n>(sq<tok>sk<kv>…)_generation_<m>(sq<tok>sk<kv>…)` into
validation/live/overhead/step_times.csv (one row per engine step; durations in s) and a
per-composition summary. The trace itself is large and not kept; a gzip of the step and
top-level-op events (≤ 2 MB) is kept as profile_steps.json.gz.

`tpot` collects the closed-loop runs conc-c{1,2,4,8,16} (128 in / 128 out) and kv-c1-in{512,
1024,2048} (one session's repeats if SESSION is given) of matrix.py, from the compact store of
validation/live (validation/live_store.py), into
validation/live/overhead/tpot_by_concurrency.csv (per repeat: concurrency, TPOT p50/mean,
ITL p50, i.e. the decode step time at that batch size; kv lengths 128..256 per sequence).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))
import live_store
from common import (
    REPO,
    LoadSampler,
    bench_argv,
    loadavg,
    run_bench,
    shell_line,
    wait_quiet,
)
from serve import DEFAULT_VENV, Server, ServerConfig, post

from infsim.calibration.overhead import steps_from_bench

OUT = REPO / "validation" / "live" / "overhead"
ANN = re.compile(
    r"execute_(?P<tot>\d+)_context_(?P<nc>\d+)\(sq(?P<ct>\d+)sk(?P<ck>\d+)sqsq\d+sqsk\d+\)"
    r"_generation_(?P<ng>\d+)\(sq(?P<gt>\d+)sk(?P<gk>\d+)sqsq\d+sqsk\d+\)"
)
ANN_SIMPLE = re.compile(
    r"execute_context_(?P<nc>\d+)\((?P<ct>\d+)\)_generation_(?P<ng>\d+)\((?P<gt>\d+)\)"
)
# (concurrency, requests, prompt tokens) per phase; 64 output tokens each.
PHASES = [(1, 2, 128), (4, 4, 128), (16, 16, 128)]
# --kv-sweep: decode steps over a range of context lengths and batch sizes (attention cost).
KV_PHASES = [
    (1, 2, 128),
    (1, 2, 512),
    (1, 2, 1024),
    (1, 2, 2048),
    (8, 8, 128),
    (8, 8, 512),
    (8, 8, 1024),
    (8, 8, 2048),
]
OUT_LEN = 64


def extract(trace_path: Path, out_dir: Path, suffix: str = "") -> list[dict]:
    with gzip.open(trace_path, "rt") if str(trace_path).endswith(".gz") else open(trace_path) as f:
        tr = json.load(f)
    ev = tr["traceEvents"] if isinstance(tr, dict) else tr
    rows, keep = [], []
    for e in ev:
        if e.get("ph") != "X":
            continue
        name = e.get("name", "")
        if e.get("cat") == "user_annotation" and name.startswith("execute_"):
            m = ANN.fullmatch(name) or ANN_SIMPLE.fullmatch(name)
            if not m:
                continue
            g = m.groupdict()
            rows.append(
                {
                    "ts_us": e["ts"],
                    "step_time_s": e["dur"] * 1e-6,
                    "num_prefill_reqs": int(g["nc"]),
                    "prefill_tokens": int(g["ct"]),
                    "prefill_kv_len_sum": int(g.get("ck") or -1),
                    "num_decode_reqs": int(g["ng"]),
                    "decode_tokens": int(g["gt"]),
                    "decode_kv_len_sum": int(g.get("gk") or -1),
                    "annotation": name,
                }
            )
            keep.append(e)
    rows.sort(key=lambda r: r["ts_us"])
    t0 = rows[0]["ts_us"] if rows else 0
    # Keep the step events plus every cpu_op nested directly in a step (compact excerpt).
    spans = [(e["ts"], e["ts"] + e["dur"]) for e in keep]
    spans.sort()
    import bisect

    starts = [s for s, _ in spans]
    for e in ev:
        if (
            e.get("ph") == "X"
            and e.get("cat") == "cpu_op"
            and e.get("name", "").startswith(
                ("_C::", "vllm::", "aten::mm", "aten::linear", "aten::embedding")
            )
        ):
            i = bisect.bisect_right(starts, e["ts"]) - 1
            if i >= 0 and e["ts"] + e["dur"] <= spans[i][1]:
                keep.append({k: e[k] for k in ("ph", "cat", "name", "ts", "dur", "args") if k in e})
    out_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(out_dir / f"profile_steps{suffix}.json.gz", "wt") as f:
        json.dump({"traceEvents": keep}, f, separators=(",", ":"))
    with open(out_dir / f"step_times{suffix}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "t_s",
                "step_time_s",
                "num_prefill_reqs",
                "prefill_tokens",
                "prefill_kv_len_sum",
                "num_decode_reqs",
                "decode_tokens",
                "decode_kv_len_sum",
                "batch_size",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    round((r["ts_us"] - t0) * 1e-6, 6),
                    round(r["step_time_s"], 7),
                    r["num_prefill_reqs"],
                    r["prefill_tokens"],
                    r["prefill_kv_len_sum"],
                    r["num_decode_reqs"],
                    r["decode_tokens"],
                    r["decode_kv_len_sum"],
                    r["num_prefill_reqs"] + r["num_decode_reqs"],
                ]
            )
    # Summary of pure-decode steps by batch size.
    by: dict[int, list[dict]] = {}
    for r in rows:
        if r["num_prefill_reqs"] == 0 and r["num_decode_reqs"] > 0:
            by.setdefault(r["num_decode_reqs"], []).append(r)
    with open(out_dir / f"decode_steps_by_batch{suffix}.csv", "w", newline="") as f:
        w = csv.writer(f)
        # batch_size, kv_len, step_time_s: the input of `infsim calibrate overhead`.
        w.writerow(
            [
                "batch_size",
                "kv_len",
                "step_time_s",
                "steps",
                "step_time_s_mean",
                "step_time_s_p10",
                "step_time_s_p90",
                "source",
            ]
        )
        for b in sorted(by):
            if len(by[b]) < 5:  # transitional compositions (a batch filling or draining)
                continue
            ts = sorted(r["step_time_s"] for r in by[b])
            kv = [r["decode_kv_len_sum"] / b for r in by[b] if r["decode_kv_len_sum"] >= 0]
            w.writerow(
                [
                    b,
                    round(statistics.fmean(kv), 1) if kv else "",
                    round(statistics.median(ts), 7),
                    len(ts),
                    round(statistics.fmean(ts), 7),
                    round(ts[int(0.1 * (len(ts) - 1))], 7),
                    round(ts[int(0.9 * (len(ts) - 1))], 7),
                    "torch-profiler user_annotation, pure decode",
                ]
            )
    return rows


def profile(
    venv: Path = DEFAULT_VENV, port: int = 18001, record_shapes: bool = True, kv_sweep: bool = False
) -> None:
    suffix = ("" if record_shapes else "_noshapes") + ("_kvsweep" if kv_sweep else "")
    phases = KV_PHASES if kv_sweep else PHASES
    prof_dir = Path("/tmp") / f"infsim-live-prof-{os.getpid()}"
    prof_dir.mkdir(parents=True, exist_ok=True)
    cfg = ServerConfig(
        port=port,
        max_num_seqs=64,
        max_num_batched_tokens=2048,
        prefix_caching=False,
        kv_space_gib=2,
        profile_dir=str(prof_dir),
    )
    cfg.extra_args = []
    # stack traces off (huge traces, slower); shapes on; detailed per-step annotations (kv lengths).
    pc = {
        "profiler": "torch",
        "torch_profiler_dir": str(prof_dir),
        "torch_profiler_record_shapes": record_shapes,
        "torch_profiler_with_stack": False,
        "detailed_trace_annotation": True,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    srv = Server(cfg, OUT / "_server.log", venv)
    argv_server = cfg.argv(venv)
    i = argv_server.index("--profiler-config")
    argv_server[i + 1] = json.dumps(pc, separators=(",", ":"))
    cfg.argv = lambda v, _a=argv_server: list(_a)  # type: ignore[method-assign]
    srv.start()
    cmds = [
        "# from the repo root; VENV=.venv-vllm",
        "# server:",
        shell_line(argv_server, venv, {"VLLM_CPU_KVCACHE_SPACE": "2"}).replace(
            str(prof_dir), "PROFDIR"
        ),
        f"curl -X POST http://127.0.0.1:{port}/start_profile",
    ]
    try:
        quiet = wait_quiet({os.getpid(), srv.pid})
        post(srv.base_url + "/start_profile")
        sampler = LoadSampler({os.getpid(), srv.pid})
        with sampler:
            for c, n, in_len in phases:
                argv = bench_argv(
                    venv,
                    port,
                    Path("/tmp") / f"infsim-prof-res-{os.getpid()}",
                    input_len=in_len,
                    output_len=OUT_LEN,
                    num_prompts=n,
                    max_concurrency=c,
                    seed=c + in_len,
                )
                run_bench(argv, OUT / f"_bench-c{c}-in{in_len}.log")
                cmds.append(
                    shell_line(argv, venv).replace(f"/tmp/infsim-prof-res-{os.getpid()}", "RESULTS")
                )
        post(srv.base_url + "/stop_profile", timeout=600)
        cmds.append(f"curl -X POST http://127.0.0.1:{port}/stop_profile")
        trace = None
        for _ in range(120):
            cands = sorted(
                p for p in prof_dir.rglob("*.pt.trace.json*") if "async_llm" not in p.name
            )
            if cands and all(p.stat().st_size > 0 for p in cands):
                time.sleep(3)
                trace = cands[0]
                break
            time.sleep(2)
    finally:
        srv.stop()
    if trace is None:
        raise SystemExit(f"no worker trace in {prof_dir}")
    rows = extract(trace, OUT, suffix)
    breakdown(suffix)
    cmds.append(
        f"python calibration/live/profile_overhead.py extract PROFDIR/{trace.name} "
        f"{suffix}".rstrip()
    )
    (OUT / f"profile_command{suffix}.txt").write_text("\n".join(cmds) + "\n")
    load = {
        **quiet,
        **sampler.summary(),
        "loadavg_after": loadavg(),
        "trace_file": trace.name,
        "trace_bytes": trace.stat().st_size,
        "steps": len(rows),
    }
    (OUT / f"profile_load{suffix}.txt").write_text("".join(f"{k}: {v}\n" for k, v in load.items()))
    for p in OUT.glob("_*.log"):
        p.unlink()
    print(
        f"{len(rows)} steps; trace {trace} ({trace.stat().st_size / 1e6:.1f} MB) left in {prof_dir}"
    )


TOP_OPS = (
    "_C::onednn_mm",
    "vllm::unified_attention_with_output",
    "vllm::unified_kv_cache_update",
    "_C::rotary_embedding",
    "aten::embedding",
    "_C::compute_slot_mapping_kernel_impl",
    "_C::get_scheduler_metadata",
)  # not nested in each other


def breakdown(suffix: str = "") -> None:
    """Per pure-decode batch size: median step time, median time in the kernel ops above
    (GEMMs, attention, KV write, RoPE, embedding) and the rest (norms, activations, sampling,
    Python, input preparation, profiler cost) -> decode_step_breakdown{suffix}.csv."""
    import bisect

    with gzip.open(OUT / f"profile_steps{suffix}.json.gz", "rt") as f:
        ev = json.load(f)["traceEvents"]
    steps = sorted((e for e in ev if e["cat"] == "user_annotation"), key=lambda e: e["ts"])
    starts = [e["ts"] for e in steps]
    acc: list[dict[str, float]] = [{} for _ in steps]
    for e in ev:
        if e["cat"] == "cpu_op" and e["name"] in TOP_OPS:
            i = bisect.bisect_right(starts, e["ts"]) - 1
            if i >= 0:
                acc[i][e["name"]] = acc[i].get(e["name"], 0.0) + e["dur"] * 1e-6
    by: dict[int, list] = {}
    for e, a in zip(steps, acc, strict=False):
        m = ANN.fullmatch(e["name"]) or ANN_SIMPLE.fullmatch(e["name"])
        if m and m["nc"] == "0" and int(m["ng"]) > 0:
            by.setdefault(int(m["ng"]), []).append((e["dur"] * 1e-6, a))
    with open(OUT / f"decode_step_breakdown{suffix}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["batch_size", "steps", "step_time_s", "kernel_ops_s", "rest_s", *list(TOP_OPS)])
        for b, v in sorted(by.items()):
            if len(v) < 5:
                continue
            step = statistics.median(x[0] for x in v)
            ops = statistics.median(sum(x[1].values()) for x in v)
            w.writerow(
                [b, len(v), round(step, 7), round(ops, 7), round(step - ops, 7)]
                + [round(statistics.median(x[1].get(k, 0.0) for x in v), 7) for k in TOP_OPS]
            )


def tpot(session: str | None = None) -> None:
    """Closed-loop TPOT per concurrency (and KV length) -> tpot_by_concurrency.csv; only the
    repeats of `session` (their session.txt) when given, since sessions drift apart."""
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        open(OUT / "tpot_by_concurrency.csv", "w", newline="") as f,
        tempfile.TemporaryDirectory() as tmp,
    ):
        w = csv.writer(f)
        # batch_size, kv_len (mean context during decode), step_time_s (= TPOT p50): the input
        # of `infsim calibrate overhead`.
        w.writerow(
            [
                "batch_size",
                "kv_len",
                "step_time_s",
                "rep",
                "input_len",
                "output_len",
                "num_prompts",
                "tpot_p50_s",
                "tpot_mean_s",
                "itl_p50_s",
                "kv_len_per_seq_min",
                "kv_len_per_seq_max",
                "foreign_busy_cores",
                "run",
                "session",
            ]
        )
        runs = [f"conc-c{c}" for c in (1, 2, 4, 8, 16)]
        runs += [f"kv-c1-in{n}" for n in (512, 1024, 2048)]
        for name in runs:
            for rep in sorted(live_store.reps(name)):
                files = live_store.files(name, rep)
                label = files.get("session.txt", b"").decode().strip()
                if session is not None and label != session:
                    continue
                d = json.loads(files["result.json"])
                il, ol = d["input_lens"][0], d["output_lens"][0]
                r = live_store.materialise(name, rep, tmp)  # result.json, as measured
                step = steps_from_bench(r).iloc[0]  # as `infsim calibrate overhead` reads it
                fc = ""
                for ln in files.get("load.txt", b"").decode().splitlines():
                    if ln.startswith("foreign_busy_cores_mean"):
                        fc = ln.split(": ")[1]
                w.writerow(
                    [
                        int(step.batch_size),
                        step.kv_len,
                        round(step.step_time_s, 6),
                        rep,
                        il,
                        ol,
                        d["num_prompts"],
                        round(d["p50_tpot_ms"] / 1e3, 6),
                        round(d["mean_tpot_ms"] / 1e3, 6),
                        round(d["p50_itl_ms"] / 1e3, 6),
                        il + 1,
                        il + ol,
                        fc,
                        f"validation/live/{name}/{rep}",
                        label,
                    ]
                )


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "profile"
    if cmd == "profile":
        profile(
            record_shapes="--no-record-shapes" not in sys.argv, kv_sweep="--kv-sweep" in sys.argv
        )
    elif cmd == "extract":
        extract(Path(sys.argv[2]), OUT, sys.argv[3] if len(sys.argv) > 3 else "")
    elif cmd == "tpot":
        tpot(sys.argv[2] if len(sys.argv) > 2 else None)
    elif cmd == "breakdown":
        breakdown(sys.argv[2] if len(sys.argv) > 2 else "")
    else:
        raise SystemExit(__doc__)
