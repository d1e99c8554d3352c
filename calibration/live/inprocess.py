#!/usr/bin/env python3
# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""An open-loop Poisson benchmark of vLLM's V1 engine *in process* (no HTTP server), writing
per-request timestamps in infsim's `vllm-inprocess` format.

    .venv-vllm/bin/python calibration/live/inprocess.py --out validation/live/inprocess \
        [--rate 4] [--num-requests 120] [--input-len 256] [--output-min 64] \
        [--output-max 128] [--seed 1] [--max-num-seqs 64] [--max-num-batched-tokens 2048] \
        [--prefix-caching] [--kv-space-gib 2] [--warmup 8]

Runs with the vLLM venv of `calibration/live/setup.sh` (it imports vllm). Builds
`LLMEngine.from_engine_args(EngineArgs(model=../shared/live/tiny-llama, load_format="dummy",
dtype="bfloat16", max_model_len=4096, enforce_eager=True, …, disable_log_stats=False))` —
the same engine knobs as `serve.py`'s base server, with `VLLM_CPU_KVCACHE_SPACE` set before
vllm is imported — warms it up with a few unrecorded requests of mixed lengths, waits until
the machine is quiet (other processes < 0.7 cores, up to --max-wait-s), then drives the
schedule: request i arrives at t0 + a_i (exponential gaps at --rate, random token-id
prompts of --input-len tokens, `SamplingParams(max_tokens=o_i, ignore_eos=True)` with o_i
uniform in [--output-min, --output-max]); the loop adds every request whose arrival has
passed, with `arrival_time = t0 + a_i` (its scheduled wall-clock time, so a request that
waited for the running `engine.step()` to return counts that wait in its TTFT, as a
request to a busy server would), then calls `engine.step()`; with nothing in flight it
sleeps until the next arrival.

Output (--out DIR): `run.jsonl`, one line per finished `RequestOutput`:
`{"request_id", "model", "num_prompt_tokens", "num_output_tokens", "finished",
"finish_reason", "metrics": dataclasses.asdict(output.metrics), "scheduled_arrival_s"
(a_i, s after t0), "add_delay_s" (when add_request ran − t0 − a_i)}`, in finishing order;
and `meta.json` (command, versions, schedule parameters, engine knobs, machine load).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shlex
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, LoadSampler, loadavg, wait_quiet

MODEL = (REPO / ".." / "shared" / "live" / "tiny-llama").resolve()
MODEL_ARG = "../shared/live/tiny-llama"  # as written in the rows (relative to the repo root)
TOKEN_RANGE = (100, 13_500)  # random prompt token ids: inside tiny-llama's 13,635-token vocab
ENGINE_ARG_KEYS = (
    "load_format",
    "dtype",
    "max_model_len",
    "enforce_eager",
    "max_num_seqs",
    "max_num_batched_tokens",
    "enable_prefix_caching",
    "disable_log_stats",
    "seed",
)
WARMUP_LENGTHS = ((64, 16), (1024, 16), (256, 64), (2048, 8), (512, 32), (128, 128))


@dataclasses.dataclass(frozen=True)
class Arrival:
    index: int
    at_s: float
    prompt: list[int]
    max_tokens: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--rate", type=float, default=4.0, help="Poisson arrival rate, req/s")
    p.add_argument("--num-requests", type=int, default=120)
    p.add_argument("--input-len", type=int, default=256, help="prompt tokens per request")
    p.add_argument("--output-min", type=int, default=64)
    p.add_argument("--output-max", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-num-seqs", type=int, default=64)
    p.add_argument("--max-num-batched-tokens", type=int, default=2048)
    p.add_argument("--prefix-caching", action="store_true", help="default: off, as the base server")
    p.add_argument("--kv-space-gib", type=int, default=2, help="VLLM_CPU_KVCACHE_SPACE")
    p.add_argument("--warmup", type=int, default=len(WARMUP_LENGTHS), help="unrecorded requests")
    p.add_argument("--max-wait-s", type=float, default=300.0, help="wait for a quiet machine")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.num_requests < 1 or args.input_len < 1:
        p.error("--rate, --num-requests and --input-len must be positive")
    if not 1 <= args.output_min <= args.output_max:
        p.error("need 1 <= --output-min <= --output-max")
    return args


def schedule(args: argparse.Namespace) -> list[Arrival]:
    rng = random.Random(args.seed)
    t, out = 0.0, []
    for i in range(args.num_requests):
        t += rng.expovariate(args.rate)
        prompt = [rng.randrange(*TOKEN_RANGE) for _ in range(args.input_len)]
        out.append(Arrival(i, t, prompt, rng.randint(args.output_min, args.output_max)))
    return out


def metrics_dict(metrics: Any) -> dict[str, Any] | None:
    if metrics is None:
        return None
    if dataclasses.is_dataclass(metrics):
        return dataclasses.asdict(metrics)
    return dict(vars(metrics))


def row(output: Any, arrival: Arrival, add_delay_s: float) -> dict[str, Any]:
    completion = output.outputs[0]
    return {
        "request_id": output.request_id,
        "model": MODEL_ARG,
        "num_prompt_tokens": len(output.prompt_token_ids),
        "num_output_tokens": len(completion.token_ids),
        "finished": output.finished,
        "finish_reason": completion.finish_reason,
        "metrics": metrics_dict(output.metrics),
        "scheduled_arrival_s": round(arrival.at_s, 6),
        "add_delay_s": round(add_delay_s, 6),
    }


def warm_up(engine: Any, sampling_params: Any, tokens_prompt: Any, count: int) -> float:
    """Run `count` unrecorded requests of mixed lengths to completion (oneDNN primitives
    per GEMM shape, first-touch allocations); returns the seconds it took."""
    rng = random.Random(12345)
    t = time.time()
    for i, (prompt_len, out_len) in enumerate((WARMUP_LENGTHS * 4)[:count]):
        prompt = [rng.randrange(*TOKEN_RANGE) for _ in range(prompt_len)]
        engine.add_request(
            f"warmup-{i}",
            tokens_prompt(prompt_token_ids=prompt),
            sampling_params(max_tokens=out_len, ignore_eos=True),
        )
    while engine.has_unfinished_requests():
        engine.step()
    return time.time() - t


def drive(engine: Any, arrivals: list[Arrival], sampling_params: Any, tokens_prompt: Any):
    """The open-loop run: (rows in finishing order, t0, seconds from t0 to the last finish)."""
    pending = deque(arrivals)
    by_id: dict[str, tuple[Arrival, float]] = {}
    rows: list[dict[str, Any]] = []
    t0 = time.time() + 0.5
    while pending or engine.has_unfinished_requests():
        now = time.time()
        while pending and t0 + pending[0].at_s <= now:
            a = pending.popleft()
            request_id = str(a.index)
            engine.add_request(
                request_id,
                tokens_prompt(prompt_token_ids=a.prompt),
                sampling_params(max_tokens=a.max_tokens, ignore_eos=True),
                arrival_time=t0 + a.at_s,
            )
            by_id[request_id] = (a, time.time() - t0 - a.at_s)
        if engine.has_unfinished_requests():
            for output in engine.step():
                if output.finished:
                    rows.append(row(output, *by_id[output.request_id]))
        elif pending:
            time.sleep(max(0.0, t0 + pending[0].at_s - time.time()))
    return rows, t0, time.time() - t0


def engine_facts(engine: Any) -> dict[str, Any]:
    cfg = getattr(engine, "vllm_config", None)
    if cfg is None:
        return {}
    sched, cache = cfg.scheduler_config, cfg.cache_config
    return {
        "async_scheduling": getattr(sched, "async_scheduling", None),
        "max_num_seqs": getattr(sched, "max_num_seqs", None),
        "max_num_batched_tokens": getattr(sched, "max_num_batched_tokens", None),
        "enable_chunked_prefill": getattr(sched, "enable_chunked_prefill", None),
        "block_size": getattr(cache, "block_size", None),
        "num_gpu_blocks": getattr(cache, "num_gpu_blocks", None),
        "enable_prefix_caching": getattr(cache, "enable_prefix_caching", None),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(args.kv_space_gib)  # read when vllm starts
    import torch
    import vllm
    from vllm import EngineArgs, LLMEngine, SamplingParams
    from vllm.inputs import TokensPrompt

    engine_args = EngineArgs(
        model=str(MODEL),
        tokenizer=str(MODEL),
        load_format="dummy",
        dtype="bfloat16",
        max_model_len=4096,
        enforce_eager=True,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        enable_prefix_caching=args.prefix_caching,
        disable_log_stats=False,  # RequestOutput.metrics is None without request stats
        seed=args.seed,
    )
    t = time.time()
    engine = LLMEngine.from_engine_args(engine_args)
    startup_s = time.time() - t
    warmup_s = warm_up(engine, SamplingParams, TokensPrompt, args.warmup)
    print(f"engine up in {startup_s:.1f} s, warm-up {warmup_s:.1f} s", flush=True)

    arrivals = schedule(args)
    roots = {os.getpid()}  # the engine core is a child process: counted as our own load
    quiet = wait_quiet(roots, max_wait_s=args.max_wait_s)
    sampler = LoadSampler(roots)
    with sampler:
        rows, t0, duration_s = drive(engine, arrivals, SamplingParams, TokensPrompt)
    if len(rows) != len(arrivals):
        print(f"only {len(rows)} of {len(arrivals)} requests finished", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "run.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    script = Path(__file__).resolve().relative_to(REPO)
    meta = {
        "command": " ".join(
            [".venv-vllm/bin/python", str(script), *map(shlex.quote, sys.argv[1:])]
        ),
        "vllm_version": vllm.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "env": {"VLLM_CPU_KVCACHE_SPACE": os.environ["VLLM_CPU_KVCACHE_SPACE"]},
        "model": MODEL_ARG,
        "engine_args": {k: getattr(engine_args, k) for k in ENGINE_ARG_KEYS},
        "engine_resolved": engine_facts(engine),
        "schedule": {
            "arrival": "poisson",
            "rate_per_s": args.rate,
            "num_requests": args.num_requests,
            "input_len": args.input_len,
            "output_len_uniform": [args.output_min, args.output_max],
            "seed": args.seed,
            "prompt_token_ids": f"uniform random in [{TOKEN_RANGE[0]}, {TOKEN_RANGE[1]})",
            "sampling": "SamplingParams(max_tokens=o_i, ignore_eos=True), otherwise defaults",
        },
        "t0_unix_s": t0,
        "duration_s": round(duration_s, 3),
        "num_finished": len(rows),
        "startup_s": round(startup_s, 1),
        "warmup": {"requests": args.warmup, "seconds": round(warmup_s, 1)},
        "machine": {**quiet, **sampler.summary(), "loadavg_after": loadavg()},
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({"rows": len(rows), "duration_s": meta["duration_s"], "out": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
