#!/usr/bin/env python3
# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""Run infsim's live benchmark matrix against vLLM (CPU) serving tiny-llama.

    python calibration/live/matrix.py                      # everything, 3 repeats
    python calibration/live/matrix.py --only light,near --reps 2
    python calibration/live/matrix.py --service-rate 6.1   # pin rates instead of measuring
    python calibration/live/matrix.py --summarize          # rewrite validation/live/README.md

Each run measures into validation/live/<run>/rep<k>/{result.json, server.log, bench.log,
command.txt, load.txt, metrics.json, session.txt}: the `vllm bench serve --save-result
--save-detailed` JSON (generated texts blanked), the slice of the server log during that run
(after the startup header with the KV-cache size), the client's output, the exact server and
client commands, the machine load, the server's Prometheus counters (preemptions,
prefix-cache hits) over the run and the session label; then stores the repeat in the compact
store (validation/live_store.py: the run's requests.parquet and repeats.parquet, the logs in
logs.tar.xz, every file's sha256 in manifest.sha256). The directory stays, ignored by git.

Servers are started by this script (serve.py), on 127.0.0.1 only, and exactly those PIDs are
stopped. Before every run the script waits until other work on the machine uses < 0.7
cores (measured from /proc, excluding this harness's own process trees).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))
import contextlib

import live_store
from common import (
    REPO,
    LoadSampler,
    bench_argv,
    loadavg,
    run_bench,
    shell_line,
    trim_result,
    wait_quiet,
)
from serve import DEFAULT_VENV, Server, ServerConfig, metrics, post

OUT = REPO / "validation" / "live"
SVC_FROM = "validation/live/service-c64/rep1 (closed loop, 64 in flight)"
INPUT, OUTPUT = 512, 128  # fixed lengths of the random-dataset runs

BASE = ServerConfig(
    port=18000, max_num_seqs=64, max_num_batched_tokens=2048, prefix_caching=False, kv_space_gib=2
)


@dataclass
class Run:
    name: str
    server: str  # key into SERVERS
    what: str  # one-line description for the README
    num_prompts: int = 120
    rate_x: float | None = None  # request rate as a multiple of the measured service rate
    max_concurrency: int | None = None
    input_len: int = INPUT
    output_len: int = OUTPUT
    dataset: str = "random"
    reps: int | None = None  # override --reps
    bench_extra: list[str] = field(default_factory=list)  # more `vllm bench serve` flags


SERVERS: dict[str, ServerConfig] = {
    "base": BASE,
    "mnbt256": replace(BASE, max_num_batched_tokens=256),
    # 33 blocks, one of them vLLM's reserved null block: 32 x 128 = 4,096 usable tokens (vLLM
    # refuses fewer than max_model_len). Eight
    # 512-token prompts fit (4 blocks each) but only six 640-token sequences (5 blocks), so
    # under load decoding requests are preempted (and recomputed).
    "smallkv": replace(BASE, num_gpu_blocks_override=33),
    "prefix": replace(BASE, prefix_caching=True, dev_mode=True),
}

RUNS: list[Run] = [
    Run(
        "service-c64",
        "base",
        "closed loop, 64 concurrent (service rate)",
        num_prompts=128,
        max_concurrency=64,
    ),
    Run("light", "base", "Poisson at 0.25x service rate", num_prompts=60, rate_x=0.25),
    Run("near", "base", "Poisson at 0.85x service rate", num_prompts=150, rate_x=0.85),
    Run("overload", "base", "Poisson at 1.5x service rate", num_prompts=150, rate_x=1.5),
    Run("closed-c8", "base", "closed loop, 8 concurrent", num_prompts=64, max_concurrency=8),
    *[
        Run(
            f"conc-c{c}",
            "base",
            f"closed loop, {c} concurrent, 128 in / 128 out (TPOT vs batch)",
            num_prompts=n,
            max_concurrency=c,
            input_len=128,
            output_len=128,
        )
        # ~10-20 s each: the machine's speed moves by ±10 % within seconds, so calibration
        # runs of a few seconds (sessions before `long-cal`: max(6, 4c) prompts) fit noise.
        for c, n in ((1, 24), (2, 32), (4, 48), (8, 96), (16, 160))
    ],
    *[
        Run(
            f"kv-c1-in{n}",
            "base",
            f"closed loop, 1 concurrent, {n} in / 128 out (decode step vs KV length)",
            num_prompts=16,  # 4 before session `long-cal`
            max_concurrency=1,
            input_len=n,
            output_len=128,
        )
        for n in (512, 1024, 2048)
    ],
    Run(
        "chunked-mnbt256",
        "mnbt256",
        "max_num_batched_tokens=256, Poisson at 0.5x service rate",
        num_prompts=100,
        rate_x=0.5,
    ),
    Run(
        "preempt-kv33",
        "smallkv",
        "KV cache 33 blocks (32 usable = 4,096 tokens), Poisson at 0.6x service rate",
        num_prompts=80,
        rate_x=0.6,
    ),
    Run(
        "preempt-kv33-hi",
        "smallkv",
        "KV cache 33 blocks (32 usable), Poisson at 0.9x service rate",
        num_prompts=80,
        rate_x=0.9,
    ),
    Run(
        "prefix-trace",
        "prefix",
        "timed trace of multi-turn sessions (shared 512-token system prompt), prefix caching on",
        dataset="timed_trace",
    ),
]

# -- timed trace with real prefix sharing -----------------------------------------------------

TRACE_SPEC = """\
synthetic:
  arrival: {kind: poisson, rate_per_s: 0.35}
  prompt_tokens: {kind: uniform, min: 64, max: 256}
  output_tokens: {kind: fixed, value: 64}
  sessions:
    num_sessions: 24
    turns: {kind: uniform, min: 2, max: 5}
    think_time: {kind: exponential, mean_s: 8}
    system_prompt_tokens: 512
    hash_block_size_tokens: 128
    max_context_tokens: 3000
"""
TRACE_SEED = 7
BLOCK = 128  # hash block = vLLM CPU KV block


def make_trace(out_dir: Path) -> tuple[Path, list[str]]:
    """infsim trace synth (multi-turn sessions) -> Mooncake-style JSONL for timed_trace."""
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = out_dir / "sessions-spec.yaml"
    spec.write_text(TRACE_SPEC)
    pqf = out_dir / "sessions.parquet"
    synth = ["infsim", "trace", "synth", "--spec", str(spec), "--seed", str(TRACE_SEED), str(pqf)]
    subprocess.run(synth, check=True, cwd=REPO)
    t = pq.read_table(pqf).to_pylist()
    t.sort(key=lambda r: r["arrival_s"])
    t0 = t[0]["arrival_s"]
    # infsim's prefix_hash_ids may cover fewer blocks than the prompt (SCHEMA: length <=
    # ceil(len / block)); vLLM's timed_trace builds the prompt from the ids and truncates it
    # to len(hash_ids) * 128 tokens. So cover every prompt block: ids beyond infsim's are
    # fresh (unique to the request, shared with nothing); ids past the prompt are dropped.
    fresh = 1 + max((h for r in t for h in (r["prefix_hash_ids"] or [])), default=0)
    jl = out_dir / "trace.jsonl"
    with open(jl, "w") as f:
        for r in t:
            need = -(-int(r["num_prompt_tokens"]) // BLOCK)
            ids = [int(h) for h in (r["prefix_hash_ids"] or [])][:need]
            while len(ids) < need:
                ids.append(fresh)
                fresh += 1
            f.write(
                json.dumps(
                    {
                        "timestamp": round((r["arrival_s"] - t0) * 1000.0, 3),
                        "input_length": int(r["num_prompt_tokens"]),
                        "output_length": int(r["num_output_tokens"]),
                        "hash_ids": ids,
                    }
                )
                + "\n"
            )
    pqf.unlink()
    cmds = [
        " ".join(
            [
                *synth[:4],
                "validation/live/prefix-trace/sessions-spec.yaml",
                *synth[5:7],
                "sessions.parquet",
            ]
        ),
        "# then: sort by arrival, timestamp = (arrival_s - first) * 1000 ms, input_length, "
        "output_length, hash_ids = prefix_hash_ids (128-token blocks) padded with fresh ids to "
        "ceil(input_length / 128) -> trace.jsonl "
        "(calibration/live/matrix.py:make_trace)",
    ]
    return jl, cmds


# -- running --------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def server_log_header(text: str) -> str:
    lines = text.splitlines(keepends=True)
    for i, ln in enumerate(lines):
        if "Application startup complete" in ln:
            return "".join(lines[: i + 1])
    return "".join(lines[:200])


WARMUP = {"input_len": 1024, "output_len": 32, "num_prompts": 24, "max_concurrency": 8}
WARMUP_EXTRA = ["--random-range-ratio", "0.95"]  # prompts of 51..1996 tokens: many shapes


def warmup(srv: Server, venv: Path) -> str:
    """Unrecorded requests right after server start: the first requests of a fresh vLLM CPU
    server are slow (oneDNN primitives created per GEMM shape, first-touch allocations; a
    first measured run was seen with TTFT p99 1.1 s instead of ~0.1 s). Returns the command."""
    tmp = Path("/tmp") / f"infsim-warmup-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    argv = bench_argv(venv, srv.cfg.port, tmp, seed=99, extra=WARMUP_EXTRA, **WARMUP)
    run_bench(argv, tmp / "bench.log")
    shutil.rmtree(tmp, ignore_errors=True)
    return shell_line(argv, venv).replace(str(tmp), "/tmp/warmup")


def next_rep(run: Run) -> int:
    """After the run's highest repeat, stored or on disk."""
    reps = [int(p.name[3:]) for p in (OUT / run.name).glob("rep*") if p.name[3:].isdigit()]
    reps += [live_store.rep_number(r) for r in live_store.reps(run.name, OUT)]
    return max(reps, default=0) + 1


def run_one(  # noqa: PLR0913
    run: Run,
    rep: int,
    srv: Server,
    venv: Path,
    rate: float | None,
    header: str,
    max_foreign: float,
    session: str = "",
    warmup_cmd: str = "",
) -> dict:
    d = OUT / run.name / f"rep{rep}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    roots = {os.getpid(), srv.pid}
    quiet = wait_quiet(roots, max_foreign=max_foreign, log=log)
    env_extra: dict[str, str] = {}
    if run.dataset == "timed_trace":
        trace = OUT / "prefix-trace" / "trace.jsonl"
        argv = bench_argv(
            venv,
            srv.cfg.port,
            d,
            dataset="timed_trace",
            trace=trace,
            num_prompts=len(trace.read_text().splitlines()),
            seed=rep,
            extra=run.bench_extra,
        )
        # The timed-trace loader seeds each block's tokens from Python's str hash: pin it,
        # distinct per repeat, so repeats do not hit each other's cached blocks.
        env_extra["PYTHONHASHSEED"] = str(1000 + rep)
        try:
            post(srv.base_url + "/reset_prefix_cache")
        except Exception as e:
            log(f"  reset_prefix_cache failed: {e}")
    else:
        argv = bench_argv(
            venv,
            srv.cfg.port,
            d,
            input_len=run.input_len,
            output_len=run.output_len,
            num_prompts=run.num_prompts,
            rate=("inf" if rate is None else round(rate, 3)),
            max_concurrency=run.max_concurrency,
            seed=1,
            extra=run.bench_extra,
        )
    logpos = srv.log_path.stat().st_size
    m0 = metrics(srv.cfg.port)
    t0 = time.time()
    sampler = LoadSampler(roots)
    with sampler:
        rc = run_bench(argv, d / "bench.log", env_extra)
    wall = time.time() - t0
    time.sleep(1.0)
    m1 = metrics(srv.cfg.port)
    with open(srv.log_path) as f:
        f.seek(logpos)
        (d / "server.log").write_text(header + "# ---- log during this run ----\n" + f.read())
    (d / "command.txt").write_text(
        "# from the repo root; VENV=.venv-vllm (calibration/live/setup.sh)\n"
        "# server:\n"
        + srv.cfg.command_line(venv)
        + "\n"
        + (
            "# before each repeat: curl -X POST http://127.0.0.1:18000/reset_prefix_cache\n"
            if run.dataset == "timed_trace"
            else ""
        )
        + (f"# server warm-up (unrecorded, after start):\n# {warmup_cmd}\n" if warmup_cmd else "")
        + "# client:\n"
        + shell_line(argv, venv, env_extra)
        + "\n"
    )
    if session:
        (d / "session.txt").write_text(session + "\n")
    load = {
        **quiet,
        **sampler.summary(),
        "loadavg_after": loadavg(),
        "wall_s": round(wall, 1),
        "nproc": os.cpu_count(),
    }
    (d / "load.txt").write_text("".join(f"{k}: {v}\n" for k, v in load.items()))
    delta = {
        k: round(m1.get(k, 0) - m0.get(k, 0), 3)
        for k in m1
        if not k.endswith(("running", "waiting", "perc"))
    }
    (d / "metrics.json").write_text(
        json.dumps({"server_counters_delta": delta, "server": srv.info}, indent=1)
    )
    if rc != 0 or not (d / "result.json").exists():
        log(f"  bench failed rc={rc}; see {d / 'bench.log'}")
        return {}
    res = trim_result(d / "result.json")
    live_store.add([(run.name, rep, d)], OUT)  # replaces a stored repeat of that number
    log(
        f"  {run.name} rep{rep}: {res['completed']}/{res['num_prompts']} ok, "
        f"{res['request_throughput']:.2f} req/s, TTFT p99 {res['p99_ttft_ms']:.0f} ms, "
        f"TPOT p50 {res['p50_tpot_ms']:.1f} ms, preempt {delta.get('vllm:num_preemptions', '?')}, "
        f"foreign {load.get('foreign_busy_cores_mean')} cores"
    )
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", help="comma-separated run names")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument(
        "--service-rate",
        type=float,
        help="req/s at 512/128; default: measure "
        "(service-c64 rep1) or read validation/live/service_rate.json",
    )
    ap.add_argument("--max-foreign-cores", type=float, default=0.7)
    ap.add_argument(
        "--first-rep",
        type=int,
        default=None,
        help="number repeats from here (default: after each run's highest existing rep)",
    )
    ap.add_argument(
        "--session",
        default=time.strftime("%Y-%m-%d"),
        help="measurement session label written to each rep's session.txt (default: today)",
    )
    ap.add_argument("--no-warmup", action="store_true", help="skip the unrecorded warm-up")
    ap.add_argument("--summarize", action="store_true")
    a = ap.parse_args(argv)
    if a.summarize:
        import summarize

        summarize.main()
        return 0
    only = set(a.only.split(",")) if a.only else None
    runs = [r for r in RUNS if only is None or r.name in only]
    OUT.mkdir(parents=True, exist_ok=True)
    svc_file = OUT / "service_rate.json"
    mu = a.service_rate
    if mu is None and svc_file.exists():
        mu = json.loads(svc_file.read_text())["service_rate_req_s"]

    for key in dict.fromkeys(r.server for r in runs):
        group = [r for r in runs if r.server == key]
        cfg = SERVERS[key]
        if key == "prefix":
            make_trace(OUT / "prefix-trace")  # deterministic (seed 7)
        srv = Server(cfg, OUT / f"_server-{key}.log", a.venv)
        log(f"starting server {key}: {cfg.command_line(a.venv)}")
        info = srv.start()
        log(
            f"  pid {srv.pid}, up in {info['startup_s']} s, KV {info.get('kv_cache_tokens')} tokens"
        )
        header = server_log_header(srv.log_path.read_text())
        try:
            warm = "" if a.no_warmup else warmup(srv, a.venv)
            if warm:
                log("  warmed up")
            # Repeats round-robin over the group's runs (rep k of every run, then rep k+1),
            # so slow drift of the machine spreads over all runs instead of biasing one.
            plan = [
                (run, rep)
                for k in range(max(run.reps or a.reps for run in group))
                for run in group
                if k < (run.reps or a.reps)
                for rep in [(next_rep(run) if a.first_rep is None else a.first_rep) + k]
            ]
            for run, rep in plan:
                rate = None
                if run.rate_x is not None:
                    if mu is None:
                        raise SystemExit(
                            "no service rate: run service-c64 first or pass --service-rate"
                        )
                    rate = run.rate_x * mu
                res = run_one(
                    run, rep, srv, a.venv, rate, header, a.max_foreign_cores, a.session, warm
                )
                if run.name == "service-c64" and rep == 1 and res and a.service_rate is None:
                    mu = res["request_throughput"]
                    svc_file.write_text(
                        json.dumps(
                            {
                                "service_rate_req_s": round(mu, 3),
                                "input_len": INPUT,
                                "output_len": OUTPUT,
                                "from": SVC_FROM,
                            },
                            indent=1,
                        )
                        + "\n"
                    )
                    log(f"  service rate {mu:.2f} req/s")
        finally:
            srv.stop()
            log(f"stopped server {key} (pid {srv.pid})")
            with contextlib.suppress(OSError):
                (OUT / f"_server-{key}.log").unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
