"""Torch implementations of the harness cases and the timer (torch is imported lazily).

Each `Case` becomes a zero-argument closure over pre-allocated inputs, so only the op runs
inside the timed region. These are the stock torch kernels, not the serving engine's:

    gemm, lm_head      torch.nn.functional.linear(x[m,k], w[n,k])   (vLLM CPU: oneDNN
                                                                      prepacked, GPU: cuBLAS)
    attention_*        scaled_dot_product_attention on dense [B,H,S,D] tensors with GQA
                       (decode folds each KV group's query heads into the query axis);
                       engines use paged KV-cache kernels, which read the cache through a
                       block table and can be slower or faster than this dense lower bound
    norm               torch.nn.functional.rms_norm (vLLM fuses the residual add)
    activation         silu(x[:, :i]) * x[:, i:]
    sampler            softmax + argmax over float32 logits (greedy sampling)
    all_reduce         torch.distributed.all_reduce in the model dtype

Timing: on CUDA, one pair of CUDA events per repeat (device time, launch overhead
excluded); on the CPU, `time.perf_counter_ns` around each call. The median of the repeats
is the result; a case stops repeating once `max_case_s` is spent (at least `min_repeats`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from infsim.calibration.harness.plan import Case, Plan

TORCH_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32"}


def closure(case: Case, dtype: Any, device: Any) -> Callable[[], Any]:
    """The function that runs `case` once; inputs are allocated here, outside timing."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    d = case.dims()
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape: int, dt: Any = dtype) -> Any:
        return torch.randn(*shape, generator=gen, dtype=torch.float32).to(device, dt)

    if case.op in ("gemm", "lm_head"):
        x, w = rand(d["m"], d["k"]), rand(d["n"], d["k"])
        return lambda: F.linear(x, w)
    if case.op.startswith("attention_"):
        return _attention(d, rand)
    if case.op == "norm":
        x, w = rand(d["num_tokens"], d["hidden_size"]), rand(d["hidden_size"])
        return lambda: F.rms_norm(x, (d["hidden_size"],), w, 1e-5)
    if case.op == "activation":
        i = d["inter_size"]
        x = rand(d["num_tokens"], 2 * i)
        return lambda: F.silu(x[:, :i]) * x[:, i:]
    if case.op == "sampler":
        logits = rand(d["batch_size"], d["n"], dt=torch.float32)
        return lambda: torch.softmax(logits, dim=-1).argmax(dim=-1)
    if case.op == "all_reduce":
        import torch.distributed as dist

        x = rand(d["message_bytes"] // dtype.itemsize)
        return lambda: dist.all_reduce(x)
    raise ValueError(f"no torch implementation for op {case.op!r}")


def _attention(d: dict[str, int], rand: Callable[..., Any]) -> Callable[[], Any]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    b, kv_len, hd = d["batch_size"], d["kv_len"], d["head_dim"]
    q_len = d.get("query_len", 1)
    k, v = rand(b, d["num_kv_heads"], kv_len, hd), rand(b, d["num_kv_heads"], kv_len, hd)
    if q_len == 1:
        # Decode sees every cached token, so the query heads of one KV group can be folded
        # into the query-length axis: q[B, Hkv, group, D] against k/v[B, Hkv, S, D] is GQA
        # decode exactly, and takes torch's fused CPU kernel (bf16 enable_gqa with one
        # query token took a path about 10x slower on torch 2.13 CPU).
        group = d["num_heads"] // d["num_kv_heads"]
        q = rand(b, d["num_kv_heads"], group, hd)
        return lambda: F.scaled_dot_product_attention(q, k, v)
    q = rand(b, d["num_heads"], q_len, hd)
    if q_len == kv_len:
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    # Query over cached context: causal mask aligned bottom-right (query i sees kv ≤ i + ctx).
    mask = torch.ones(q_len, kv_len, dtype=torch.bool, device=q.device).tril(kv_len - q_len)
    return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)


def make_timer(device: Any, plan: Plan) -> Callable[[Callable[[], Any]], float]:
    """fn → median seconds per call, following `plan`'s warm-up and repeat rules."""
    import torch

    if device.type == "cuda":
        return lambda fn: _time(fn, plan, _cuda_once(torch, device))
    return lambda fn: _time(fn, plan, _cpu_once)


def _time(fn: Callable[[], Any], plan: Plan, once: Callable[[Callable[[], Any]], float]) -> float:
    for _ in range(plan.warmup):
        once(fn)
    times_s: list[float] = []
    spent_s = 0.0
    while len(times_s) < plan.repeats:
        times_s.append(once(fn))
        spent_s += times_s[-1]
        if len(times_s) >= plan.min_repeats and spent_s > plan.max_case_s:
            break
    return statistics.median(times_s)


def _cpu_once(fn: Callable[[], Any]) -> float:
    start_ns = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start_ns) * 1e-9


def _cuda_once(torch: Any, device: Any) -> Callable[[Callable[[], Any]], float]:
    def once(fn: Callable[[], Any]) -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3  # elapsed_time is in milliseconds

    torch.cuda.set_device(device)
    return once
