#!/usr/bin/env python3
# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""Time the live engine's own kernels (vLLM CPU) for a model, as infsim calibration rows.

    python calibration/live/kernels.py measure [--model DIR] [--out CSV] [--venv VENV]
    python calibration/live/kernels.py table   [--rows CSV] [--base DIR] [--out DIR]

`measure` runs itself under the vLLM venv (calibration/live/setup.sh) with one torch
thread, as the engine worker does, and times the kernels vLLM 0.32's CPU backend calls
for each op of the model (shapes from its config.json), on random inputs:

    gemm, lm_head      ops.onednn_mm with a prepacked weight (create_onednn_mm), the
                       dispatch vLLM uses for bf16 linear layers on x86 without AMX
    attention_prefill  ops.cpu_attention_with_kv_cache over a paged KV cache (128-token
                       blocks), one sequence of q new tokens over c cached ones
                       (kv_len = q + c), causal; plus get_scheduler_metadata, which the
                       engine builds once per step and layer group
    attention_decode   the same kernel, b sequences of one new token over kv_len
    norm               vLLM's fused add + RMSNorm as the CPU platform runs it (the IR op's
                       "native" torch implementation, float32 inside; its C kernel is for
                       GPUs only), two rows per size (the layer's two norms, as variants)
    activation         SiluAndMul.forward_native (x86 CPUs take the torch path too)
    rotary             ops.rotary_embedding (neox style, as Llama)
    elementwise        ops.cpu_attn_reshape_and_cache (the KV write of each layer)

Each case is the median of repeats after warm-up (time.perf_counter_ns; at least 5
repeats, until 0.5 s of timed calls is spent), with its data cold and its code warm: before
each repeat a buffer twice the last-level cache is written and a twin of the case runs on
other inputs, because in a serving step the weights and the KV cache are read once per step
and together exceed the cache. Timed warm, a batch-1 decode step's ops come out at less
than half of what vLLM's profiler shows live; timed this way, decode attention matches the
profile within ~10 % (validation/live/overhead/README.md, section 3).

`table` builds a calibration directory from those rows: the measured ops replace the same
ops of the base table (the stock-torch harness table calibration/cpu-host-torch); ops it
does not measure (the sampler) stay; fitted step_overhead/frontend rows are dropped, as
they are the remainder of the old ops (refit them with `infsim calibrate overhead|frontend`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".venv-vllm"
DEFAULT_MODEL = REPO.parent / "shared" / "live" / "tiny-llama"
DEFAULT_ROWS = REPO / "calibration" / "live" / "kernels-vllm-cpu.csv"
BLOCK_SIZE = 128
M_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
          1536, 2048, 4096)  # fmt: skip
PREFILL_Q = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
PREFILL_CACHED = (0, 256, 1024)
DECODE_B = (1, 2, 4, 8, 16, 32, 64)
DECODE_KV = (16, 64, 256, 512, 1024, 2048, 4096)
TOKEN_GRID = (1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096)
VARIANT = "vllm-cpu"


def _l3_bytes() -> int:
    """The largest CPU cache of this host (sysfs), 32 MiB when it cannot be read."""
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = path.read_text().strip()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes, default=32 << 20)


_FLUSH: list = []


def _evict() -> None:
    """Write a buffer twice the size of the last-level cache, so that the next call reads
    its weights and KV from memory, as in a serving step (the model's weights and KV cache
    together exceed the cache; each is read once per step)."""
    if not _FLUSH:
        import torch

        _FLUSH.append(torch.zeros(2 * _l3_bytes() // 4, dtype=torch.float32))
    _FLUSH[0].add_(1.0)


def _timer(make, min_repeats: int = 5, budget_s: float = 0.5) -> float:
    """Median time of `make()`'s closure with its data cold and its code warm: before each
    repeat the cache is overwritten (`_evict`) and a twin closure over other inputs of the
    same shape runs, so the kernel's code, dispatch and primitive caches are hot while the
    inputs it is timed on come from memory, as in a serving step."""
    timed, twin = make(), make()
    for _ in range(3):
        timed()
        twin()
    times: list[int] = []
    spent_ns = 0
    while len(times) < min_repeats or spent_ns < budget_s * 1e9:
        _evict()
        twin()
        t0 = time.perf_counter_ns()
        timed()
        times.append(time.perf_counter_ns() - t0)
        spent_ns += times[-1]
        if len(times) >= 200:
            break
    times.sort()
    return times[len(times) // 2] / 1e9


def measure(model_dir: Path) -> list[dict]:  # noqa: C901, PLR0915 (one block per op family)
    """All cases for the model in `model_dir` (runs inside the vLLM venv)."""
    import torch
    from vllm import _custom_ops as ops
    from vllm import ir
    from vllm.model_executor.layers.activation import SiluAndMul
    from vllm.v1.attention.backends.cpu_attn import _get_attn_isa

    torch.set_num_threads(1)
    cfg = json.loads((model_dir / "config.json").read_text())
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or hidden // heads
    vocab, eps = cfg["vocab_size"], cfg.get("rms_norm_eps", 1e-5)
    dt = torch.bfloat16
    dtype = "bfloat16"
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int, dtype=dt) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dtype)

    rows: list[dict] = []
    heads_cols = {"num_heads": heads, "num_kv_heads": kv_heads, "head_dim": head_dim}

    def add(op: str, time_s: float, **dims) -> None:
        # dims may name the row's own variant
        rows.append({"op": op, "dtype": dtype, "variant": VARIANT, "tp": 1, **dims,
                     "time_s": time_s})  # fmt: skip
        print(f"{op:18s} {json.dumps(dims)} {time_s * 1e6:10.1f} us", flush=True)

    # -- GEMMs: the model's projections and the LM head, through oneDNN prepacked weights.
    def gemm(m: int, n: int, k: int):
        def make():
            handler, x = ops.create_onednn_mm(rand(n, k).t(), 32), rand(m, k)
            return lambda: ops.onednn_mm(handler, x, None)

        return make

    shapes = {"qkv": ((heads + 2 * kv_heads) * head_dim, hidden), "o": (hidden, heads * head_dim),
              "gate_up": (2 * inter, hidden), "down": (hidden, inter)}  # fmt: skip
    for n, k in shapes.values():
        for m in M_GRID:
            add("gemm", _timer(gemm(m, n, k)), m=m, n=n, k=k)
    for b in (*DECODE_B, 128, 256):
        add("lm_head", _timer(gemm(b, vocab, hidden)), batch_size=b, n=vocab, k=hidden)

    # -- Attention over a paged KV cache: each closure reads its own blocks.
    isa = _get_attn_isa(dt, BLOCK_SIZE, head_dim)
    blocks_per_closure = max(DECODE_B) * -(-(max(DECODE_KV) + 1) // BLOCK_SIZE)
    cache = rand(2 * blocks_per_closure, kv_heads, 2 * BLOCK_SIZE, head_dim)
    key_cache, value_cache = cache.chunk(2, dim=2)
    closures = [0]

    def attention(reqs: list[tuple[int, int]]):
        """Factory of one layer's attention for sequences of (new, cached) tokens."""
        new = [q for q, _ in reqs]
        seq = [q + c for q, c in reqs]
        starts = torch.tensor([0, *torch.cumsum(torch.tensor(new), 0).tolist()], dtype=torch.int32)
        seq_lens = torch.tensor(seq, dtype=torch.int32)
        width = max(-(-s // BLOCK_SIZE) for s in seq)

        def make():
            query = rand(sum(new), heads, head_dim)
            out = torch.empty_like(query)
            table = torch.zeros(len(reqs), width, dtype=torch.int32)
            nxt = (closures[0] % 2) * blocks_per_closure
            closures[0] += 1
            for i, s in enumerate(seq):
                nb = -(-s // BLOCK_SIZE)
                table[i, :nb] = torch.arange(nxt, nxt + nb)
                nxt += nb

            def run() -> None:
                meta = ops.cpu_attn_get_scheduler_metadata(
                    num_reqs=len(reqs), num_heads=heads, num_kv_heads=kv_heads,
                    head_dim=head_dim, seq_lens=seq_lens, dtype=dt, query_start_loc=starts,
                    causal=True, sliding_window_size=-1, isa=isa, enable_kv_split=False,
                )  # fmt: skip
                ops.cpu_attention_with_kv_cache(
                    query=query, key_cache=key_cache, value_cache=value_cache, output=out,
                    query_start_loc=starts, seq_lens=seq_lens, scale=head_dim**-0.5,
                    causal=True, alibi_slopes=None, sliding_window=-1, block_table=table,
                    softcap=0.0, scheduler_metadata=meta, s_aux=None,
                )  # fmt: skip

            return run

        return make

    for q in PREFILL_Q:
        for c in PREFILL_CACHED:
            if q + c <= max(DECODE_KV) + 1024:
                add("attention_prefill", _timer(attention([(q, c)])), batch_size=1,
                    query_len=q, kv_len=q + c, **heads_cols)  # fmt: skip
    for b in DECODE_B:
        for kv in DECODE_KV:
            add("attention_decode", _timer(attention([(1, kv - 1)] * b)), batch_size=b,
                kv_len=kv, **heads_cols)  # fmt: skip

    # -- Per-token ops of one layer.
    positions_max = 8192
    exponents = torch.arange(0, head_dim, 2).float() / head_dim
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** exponents)
    freqs = torch.outer(torch.arange(positions_max).float(), inv)
    cos_sin = torch.cat([freqs.cos(), freqs.sin()], dim=-1).to(dt)
    norm = ir.ops.fused_add_rms_norm.impls["native"].impl_fn

    def norm_case(t: int):
        def make():
            x, residual, weight = rand(t, hidden), rand(t, hidden), rand(hidden)
            return lambda: norm(x, residual, weight, eps)

        return make

    def activation_case(t: int):
        def make():
            gate_up = rand(t, 2 * inter)
            return lambda: SiluAndMul.forward_native(gate_up)

        return make

    def rotary_case(t: int):
        def make():
            positions = torch.arange(t, dtype=torch.int64) % positions_max
            qr, kr = rand(t, heads * head_dim), rand(t, kv_heads * head_dim)
            return lambda: ops.rotary_embedding(positions, qr, kr, head_dim, cos_sin, True)

        return make

    def kv_write_case(t: int):
        def make():
            key, value = rand(t, kv_heads, head_dim), rand(t, kv_heads, head_dim)
            slots = torch.arange(t, dtype=torch.int64) + (closures[0] % 2) * t
            closures[0] += 1
            return lambda: ops.cpu_attn_reshape_and_cache(
                key, value, key_cache, value_cache, slots, isa
            )

        return make

    for t in TOKEN_GRID:
        for which in ("input", "post_attention"):  # two norms per layer: two variants
            add("norm", _timer(norm_case(t)), num_tokens=t, hidden_size=hidden,
                variant=f"{VARIANT}:{which}")  # fmt: skip
        add("activation", _timer(activation_case(t)), num_tokens=t, inter_size=inter)
        add("rotary", _timer(rotary_case(t)), num_tokens=t, hidden_size=hidden)
        add("elementwise", _timer(kv_write_case(t)), num_tokens=t, hidden_size=hidden)
    return rows


def _measure_cmd(args: argparse.Namespace) -> int:
    if os.environ.get("INFSIM_KERNELS_CHILD") != "1":
        python = args.venv / "bin" / "python"
        if not python.is_file():
            print(f"{python}: no vLLM venv; run calibration/live/setup.sh first", file=sys.stderr)
            return 2
        env = {**os.environ, "INFSIM_KERNELS_CHILD": "1", "OMP_NUM_THREADS": "1"}
        return subprocess.call([str(python), __file__, *sys.argv[1:]], env=env)
    import csv

    import torch
    import vllm

    rows = measure(args.model)
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "op", k == "time_s", k))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        f.write(f"# vllm {vllm.__version__}, torch {torch.__version__}, 1 thread; "
                f"model {args.model.name}; {' '.join(sys.argv)}\n")  # fmt: skip
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}: {len(rows)} rows")
    return 0


def _table_cmd(args: argparse.Namespace) -> int:
    import datetime as dt

    import pandas as pd

    from infsim.calibration.importers._common import sha256
    from infsim.cost.table import Provenance, read, to_table, write

    header = args.rows.read_text().splitlines()[0].lstrip("# ")
    measured = pd.read_csv(args.rows, comment="#")
    base, meta = read(args.base)
    ops = base.to_pandas()
    drop = set(measured["op"]) | {"step_overhead", "frontend", "frontend_stream"}
    kept = ops[~ops["op"].isin(drop)]
    frame = pd.concat([kept, measured], ignore_index=True)
    source = str(args.rows.relative_to(REPO)) if args.rows.is_relative_to(REPO) else str(args.rows)
    meta = meta.model_copy(update={
        "name": args.out.name, "engine": "vllm-cpu", "engine_version": header.split(",")[0],
        "source": f"vLLM CPU kernels timed on this host ({header})",
        "collected": dt.date.today().isoformat(),
        "importer": f"python calibration/live/kernels.py table --rows {source}",
        "provenance": (
            *[p for p in meta.provenance if p.op is None],
            Provenance(path=source, rows=len(measured), sha256=sha256(args.rows),
                       op="gemm,lm_head,attention_prefill,attention_decode,norm,activation,"
                          "rotary,elementwise"),
        ),
        "notes": (
            "Measured ops are the live engine's own kernels (calibration/live/kernels.py): "
            "oneDNN prepacked GEMMs, cpu_attention_with_kv_cache over a paged cache, fused "
            "add+RMSNorm, silu_and_mul, rotary_embedding, the KV write; the sampler rows are "
            "the stock-torch harness's (" + str(args.base.name) + ").",
            *[n for n in meta.notes if n.startswith("CPU:")],
        ),
    })  # fmt: skip
    write(args.out, to_table(frame, source), meta)
    print(f"wrote {args.out}: {len(frame)} rows ({len(measured)} measured, {len(kept)} kept)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    m.add_argument("--out", type=Path, default=DEFAULT_ROWS)
    m.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    t = sub.add_parser("table")
    t.add_argument("--rows", type=Path, default=DEFAULT_ROWS)
    t.add_argument("--base", type=Path, default=REPO / "calibration" / "cpu-host-torch")
    t.add_argument("--out", type=Path, default=REPO / "calibration" / "cpu-host-vllm")
    args = parser.parse_args()
    return _measure_cmd(args) if args.cmd == "measure" else _table_cmd(args)


if __name__ == "__main__":
    sys.exit(main())
