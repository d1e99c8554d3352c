#!/usr/bin/env python3
# ruff: noqa: T201, E501  (a command-line script: it reports on stdout)
"""Tabulate the repeats of validation/live's compact store (validation/live_store.py) into
validation/live/runs.csv and README.md.

python calibration/live/summarize.py
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))
import live_store
from common import REPO

LIVE = REPO / "validation" / "live"


def _kv(text: str) -> dict[str, str]:
    out = {}
    for ln in text.splitlines():
        if ": " in ln:
            k, v = ln.split(": ", 1)
            out[k] = v
    return out


def _server_flags(cmd: str) -> str:
    keep = []
    toks = cmd.split()
    for i, t in enumerate(toks):
        if t.startswith("VLLM_CPU_KVCACHE_SPACE"):
            keep.append(t.replace("VLLM_CPU_KVCACHE_SPACE", "KV") + "GiB")
        if t in ("--max-num-seqs", "--max-num-batched-tokens", "--num-gpu-blocks-override"):
            keep.append(f"{t.lstrip('-')}={toks[i + 1]}")
        if t in ("--enable-prefix-caching", "--no-enable-prefix-caching"):
            keep.append("prefix-caching" if t.startswith("--enable") else "no-prefix-caching")
    return " ".join(keep)


def _server_key(flags: str) -> str:
    if "num-gpu-blocks-override" in flags:
        return "smallkv (" + flags.split("num-gpu-blocks-override=")[1].split()[0] + " blocks)"
    if "max-num-batched-tokens=256" in flags:
        return "mnbt256"
    if "no-prefix-caching" not in flags and "prefix-caching" in flags:
        return "prefix"
    return "base"


def _hist_mean(delta: dict, hist: str) -> float | str:
    n = delta.get(f"vllm:{hist}_count", 0)
    return round(delta[f"vllm:{hist}_sum"] / n * 1e3, 2) if n else ""


def collect() -> list[dict]:
    rows = []
    from matrix import RUNS  # order of the matrix

    order = {r.name: i for i, r in enumerate(RUNS)}
    what = {r.name: r.what for r in RUNS}
    repeats = [(run, rep) for run in live_store.runs(LIVE) for rep in live_store.reps(run, LIVE)]
    for run, rep in sorted(repeats, key=lambda t: (order.get(t[0], 99), t[0], t[1])):
        files = live_store.files(run, rep, LIVE)  # result.json etc. as measured
        d = json.loads(files["result.json"])
        load = _kv(files.get("load.txt", b"").decode())
        m = json.loads(files["metrics.json"]) if "metrics.json" in files else {}
        delta, srv = m.get("server_counters_delta", {}), m.get("server", {})
        q = delta.get("vllm:prefix_cache_queries", 0)
        rows.append(
            {
                "run": run,
                "rep": rep,
                "session": files.get("session.txt", b"").decode().strip(),
                "what": what.get(run, ""),
                "server": _server_flags(srv.get("command", "")),
                "kv_cache_tokens": srv.get("kv_cache_tokens", ""),
                "request_rate": d.get("request_rate"),
                "max_concurrency": d.get("max_concurrency"),
                "num_prompts": d["num_prompts"],
                "completed": d["completed"],
                "mean_input_len": round(statistics.fmean(d["input_lens"]), 1),
                "mean_output_len": round(statistics.fmean(d["output_lens"]), 1),
                "duration_s": round(d["duration"], 2),
                "request_throughput": round(d["request_throughput"], 3),
                "output_throughput": round(d["output_throughput"], 1),
                **{
                    f"{s}_{m_}_ms": round(d[f"{s}_{m_}_ms"], 1)
                    for m_ in ("ttft", "tpot", "itl", "e2el")
                    for s in ("mean", "p50", "p90", "p99")
                },
                "preemptions": delta.get("vllm:num_preemptions", ""),
                "prefix_hit_rate": round(delta.get("vllm:prefix_cache_hits", 0) / q, 3)
                if q
                else "",
                # The server's own mean latencies (Prometheus histogram sum / count over the
                # run; absent for runs before they were recorded): the client's TTFT minus
                # the server's is the HTTP/streaming part of the front end.
                **{
                    f"server_{name}_mean_ms": _hist_mean(delta, hist)
                    for name, hist in (
                        ("ttft", "time_to_first_token_seconds"),
                        ("queue", "request_queue_time_seconds"),
                        ("prefill", "request_prefill_time_seconds"),
                        ("decode", "request_decode_time_seconds"),
                        ("e2e", "e2e_request_latency_seconds"),
                    )
                },
                "foreign_cores": load.get("foreign_busy_cores_mean", ""),
                "loadavg_before": load.get("loadavg_before", "").split(" ")[0],
            }
        )
    return rows


def spread(rows: list[dict]) -> list[dict]:
    out = []
    runs = dict.fromkeys(r["run"] for r in rows)
    for run in runs:
        rs = [r for r in rows if r["run"] == run]
        o = {"run": run, "reps": len(rs)}
        for k in (
            "p99_ttft_ms",
            "p50_tpot_ms",
            "p50_ttft_ms",
            "p99_tpot_ms",
            "p50_e2el_ms",
            "p99_e2el_ms",
            "output_throughput",
        ):
            v = [r[k] for r in rs]
            mu = statistics.fmean(v)
            o[k] = round(mu, 1)
            o[k + "_spread_pct"] = round(100 * (max(v) - min(v)) / mu, 1) if mu else 0.0
        out.append(o)
    return out


def main() -> None:
    rows = collect()
    if not rows:
        print("no runs")
        return
    with open(LIVE / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    sp = spread(rows)
    svc = (
        json.loads((LIVE / "service_rate.json").read_text())
        if (LIVE / "service_rate.json").exists()
        else {}
    )
    lines = [
        "# Live vLLM (CPU) benchmarks of tiny-llama",
        "",
        "Measured with `calibration/live/` (vllm-cpu 0.32.0, V1 engine, `--load-format dummy`, bf16,",
        "`--enforce-eager`, 1 torch thread in the engine core) on a shared 2-core x86-64 machine.",
        "Each run keeps its repeats in `<run>/requests.parquet` and `<run>/repeats.parquet` (see",
        "*Layout* below), from which `validation/live_store.py` rebuilds each repeat's files",
        "`<run>/rep<k>/` byte for byte: `result.json` (`vllm bench serve --save-result",
        "--save-detailed`; generated texts blanked, times rounded to 1 µs), `command.txt` (exact",
        "server and client commands), `load.txt` (load average and the CPU cores used by *other*",
        "processes during the run, sampled from /proc), `metrics.json` (server counters over the",
        "run: preemptions, prefix-cache queries/hits, and since session `warm-1400` the sums and",
        "counts of the server's latency histograms: its own TTFT, queue, prefill and decode time)",
        "and `session.txt` (the measurement session). Their `server.log` (startup header with the",
        "KV size, then the log during the run) and `bench.log` (the client's output) are in",
        "`logs.tar.xz`. `runs.csv` has one row per repeat.",
        "",
        "**Sessions.** The same run measured in different sessions differs by more than the",
        "repeats within one (e.g. TPOT of `near` 18.5 ms in the first session, 26+ ms in",
        "`warm-1400`): the 2-core VM's speed drifts, invisibly to /proc (no steal time; most",
        "likely SMT siblings shared with other tenants). Each session therefore calibrates",
        "itself (its `conc-c*`/`kv-c1-*` runs) and `validation/report.py` predicts each session",
        "with its own calibration. Sessions before `warm-1400` are labelled by the commit that",
        "added them; they ran each run's repeats back to back without a warm-up, so their first",
        "repeat after a server start can carry one-off costs (oneDNN primitive creation per GEMM",
        "shape, first-touch allocations: one such run measured TTFT p99 1.1 s instead of 0.1 s).",
        "From `warm-1400` on, `matrix.py` warms each new server up with unrecorded requests of",
        "mixed lengths (the command is in each `command.txt`) and runs the repeats round-robin.",
        "From `long-cal` on, the calibration runs (`conc-c*`, `kv-c1-*`) last 10-20 s (24-160",
        "requests instead of 4-64) and are repeated like the others: the machine's speed swings",
        "by 10-25 % within a minute (`overhead/c1-alternation/`), so a few-second run measures",
        "the moment rather than the engine.",
        "",
        "The scenario for these runs is `scenarios/vllm-cpu-tiny-llama.yaml` (it matches the",
        "`base` server: max_num_seqs 64, max_num_batched_tokens 2048, prefix caching off, KV",
        "1,048,576 tokens = 8,192 blocks of 128). Other servers differ by one knob:",
        "",
        "| server | differs by | infsim `--set` |",
        "|---|---|---|",
        "| base | - | - |",
        "| mnbt256 | `--max-num-batched-tokens 256` | `engine.max_num_batched_tokens=256` |",
        "| smallkv | `--num-gpu-blocks-override 33` | `engine.num_gpu_blocks_override=33` |",
        "| prefix | `--enable-prefix-caching` (+ `VLLM_SERVER_DEV_MODE=1` for `/reset_prefix_cache` between repeats) | `engine.enable_prefix_caching=true` |",
        "",
        f"Service rate (closed loop, 64 concurrent, 512 in / 128 out): "
        f"**{svc.get('service_rate_req_s', '?')} req/s** (`service-c64/rep1`); the open-loop rates are",
        "multiples of it (light 0.25x, near 0.85x, overload 1.5x, mnbt256 0.5x, small KV 0.6x and 0.9x).",
        "Random-dataset runs use fixed lengths (512/128, or 128/128 for `conc-c*`), seed 1, Poisson",
        "arrivals; every repeat sends the same requests (prefix caching is off on those servers).",
        "`prefix-trace` replays `prefix-trace/trace.jsonl` (Mooncake-style, `hash_ids` over 128-token",
        "blocks = vLLM's CPU block size; load it in infsim as `format: mooncake` with",
        "`hash_block_size_tokens: 128`, Mooncake's default being 512) built from `infsim trace synth`",
        "multi-turn sessions with a shared 512-token system prompt (`prefix-trace/sessions-spec.yaml`,",
        "seed 7). infsim's ids may cover fewer blocks than the prompt, and vLLM's loader truncates",
        "the prompt to `len(hash_ids) * 128` tokens, so the conversion pads each request's ids with",
        "fresh ones to `ceil(input_length / 128)`; the sent prompt lengths equal `input_length`.",
        "Each repeat uses a different `PYTHONHASHSEED` (the loader derives block tokens from it)",
        "after `/reset_prefix_cache`, so repeats do not hit each other's blocks, and the cache is",
        "cold at t = 0 (`vllm bench serve` 0.32 sends no ready-check request by default;",
        "`--ready-check-timeout-sec 0`, written out in reps 4-6, is that default). Measured",
        "prefix-cache hits: 61,440 of 83,733 prompt tokens (73.4%) in every repeat, exactly the",
        "full-block prefix matches of the trace in arrival order.",
        "",
        "KV: vLLM reserves one block (the null block) of `num_gpu_blocks`, so the usable capacity",
        "is N - 1 blocks (the small-KV server has 33 = 32 usable x 128 = 4,096 tokens, the least",
        "vLLM accepts with max_model_len 4096). Preemptions under that cache vary a lot between",
        "identical repeats (see the preempt column): the run sits at the edge of the KV limit.",
        "",
        *live_store.README_SECTION.splitlines(),
        "",
        "## Runs (one row per repeat)",
        "",
        "foreign = mean CPU cores used by processes other than this harness during the run (2 cores",
        "in all); load = 1-min load average just before the run (includes the idle server).",
        "",
        "| run | rep | server | rate req/s | conc | n | foreign cores | load | KV tokens | req/s | out tok/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | E2E p50 ms | E2E p99 ms | preempt | prefix hit |",
        "|" + "---|" * 19,
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                str(x)
                for x in [
                    r["run"],
                    r["rep"],
                    _server_key(r["server"]),
                    r["request_rate"],
                    r["max_concurrency"] or "",
                    r["num_prompts"],
                    r["foreign_cores"],
                    r["loadavg_before"],
                    r["kv_cache_tokens"],
                    r["request_throughput"],
                    r["output_throughput"],
                    r["p50_ttft_ms"],
                    r["p99_ttft_ms"],
                    r["p50_tpot_ms"],
                    r["p99_tpot_ms"],
                    r["p50_e2el_ms"],
                    r["p99_e2el_ms"],
                    r["preemptions"],
                    r["prefix_hit_rate"],
                ]
            )
            + " |"
        )
    lines += [
        "",
        "## Spread between repeats",
        "",
        "Mean over repeats and (max - min) / mean in %.",
        "",
        "| run | reps | TTFT p99 ms | spread % | TPOT p50 ms | spread % | TTFT p50 ms | spread % | TPOT p99 ms | spread % | E2E p99 ms | spread % | out tok/s | spread % |",
        "|" + "---|" * 14,
    ]
    for o in sp:
        lines.append(
            "| "
            + " | ".join(
                str(x)
                for x in [
                    o["run"],
                    o["reps"],
                    o["p99_ttft_ms"],
                    o["p99_ttft_ms_spread_pct"],
                    o["p50_tpot_ms"],
                    o["p50_tpot_ms_spread_pct"],
                    o["p50_ttft_ms"],
                    o["p50_ttft_ms_spread_pct"],
                    o["p99_tpot_ms"],
                    o["p99_tpot_ms_spread_pct"],
                    o["p99_e2el_ms"],
                    o["p99_e2el_ms_spread_pct"],
                    o["output_throughput"],
                    o["output_throughput_spread_pct"],
                ]
            )
            + " |"
        )
    lines += [
        "",
        "## Rerun",
        "",
        "```",
        "calibration/live/setup.sh                    # vLLM CPU into .venv-vllm (idempotent)",
        "python calibration/live/matrix.py            # all runs, 3 repeats (~25 min on 2 cores), stored",
        "python calibration/live/matrix.py --only light,near --reps 2   # a subset",
        "python calibration/live/profile_overhead.py profile   # torch-profiled steps -> overhead/",
        "python calibration/live/profile_overhead.py profile --no-record-shapes   # *_noshapes",
        "python calibration/live/profile_overhead.py tpot      # conc-c* -> overhead/tpot_by_concurrency.csv",
        "python calibration/live/summarize.py         # this README and runs.csv",
        "python validation/live_store.py materialise  # every repeat's files, at <run>/rep<k>/",
        "```",
        "",
        "Rates are multiples of `service_rate.json` (measured by `service-c64` rep 1, or pinned",
        "with `--service-rate`). Before each run the harness waits (30 s steps, up to 5 min)",
        "until other processes use < 0.7 cores. A single run by hand: start a server with",
        "`python calibration/live/serve.py start --port 18000 --max-num-seqs 64",
        "--max-num-batched-tokens 2048 --no-prefix-caching`, run the client line from any",
        "`command.txt`, then `python calibration/live/serve.py stop --port 18000`; `python",
        "validation/live_store.py add <run> rep<k>` stores the repeat's directory.",
        "",
        "Compare with infsim: `python validation/live_store.py materialise <run>/rep1`, then",
        "`infsim validate validation/live/<run>/rep1/result.json --scenario",
        "scenarios/vllm-cpu-tiny-llama.yaml` plus the server's `--set` from the table above (the",
        "bench JSON carries no prefix hashes: for `prefix-trace`, the hashes are in",
        "`prefix-trace/trace.jsonl`).",
        "",
        "`overhead/` holds the per-step measurements for fitting the engine's step overhead (see",
        "`overhead/README.md`).",
        "",
    ]
    (LIVE / "README.md").write_text("\n".join(lines))
    print(f"{len(rows)} repeats of {len(sp)} runs -> {LIVE / 'README.md'}")


if __name__ == "__main__":
    main()
