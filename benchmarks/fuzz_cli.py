"""A fuzz campaign through the command line: mutated inputs of every kind, counted by outcome.

    python benchmarks/fuzz_cli.py [--cases 10000] [--seed 0] [--workers 2] [--timeout-s 30]
                                  [--out fuzz-out]

Each case writes a mutated input (a scenario YAML mutated in structure, values or raw
bytes; a `--set` override; a trace file of one of the formats; a benchmark result for
`infsim validate`; a sweep axes file or constraint expression) into a temporary directory
and runs the matching `infsim` command in-process (click's runner, in forked workers with
an address-space limit and an alarm). Outcomes:

    ok           exit 0
    input-error  exit 2 with a one-paragraph message (the promise for bad input)
    traceback    anything else: an "internal error" (exit 1) or an exception escaping
    hang         the command ran past --timeout-s
    memory       the command ran out of the worker's address space (--memory-gib)
    long-message an input error longer than 2,100 characters

The summary (counts per category and outcome) goes to stdout and OUT/summary.json; every
case that is not ok / input-error is kept under OUT/cases/ with its argv and files, to be
replayed by hand. The campaign is deterministic for a seed (the inputs, not the timings).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import random
import resource
import shutil
import signal
import tempfile
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
MESSAGE_LIMIT = 2100

BASE = {
    "name": "fuzz",
    "model": "llama-3.1-8b",
    "hardware": {"gpu": "h100-sxm"},
    "workload": {"synthetic": {
        "num_requests": 20,
        "arrival": {"kind": "poisson", "rate_per_s": 4.0},
        "prompt_tokens": {"kind": "lognormal", "mean": 300, "sigma": 0.5, "min": 8, "max": 2000},
        "output_tokens": {"kind": "fixed", "value": 16},
    }},
    "engine": {"max_num_seqs": 32, "max_num_batched_tokens": 2048},
    "slo": {"ttft_s": 1.0, "tpot_s": 0.05},
}  # fmt: skip

VARIANTS = [
    {},
    {"deployment": {"replicas": 2}, "router": {"kind": "prefix_aware", "cache_threshold": 0.5}},
    {"deployment": {"pools": [{"name": "a", "replicas": 1, "max_replicas": 3}]},
     "autoscaling": {"signal": "concurrency", "target_per_replica": 4, "interval_s": 1}},
    {"deployment": {"pools": [{"name": "s", "replicas": 2, "pricing": {
        "kind": "spot", "spot_interruptions_per_hour": 5}}]},
     "failures": {"policy": "requeue", "replica_mtbf_s": 60, "spot_notice_s": 5}},
    {"engine": {"speculative": {"method": "ngram", "num_speculative_tokens": 3}}},
    {"calibration": "h100-vllm-0.19", "frontend": {"api_server_count": 2}},
    {"calibration": "auto", "workload": {"synthetic": {
        "num_requests": 20, "arrival": {"kind": "poisson", "rate_per_s": 4.0},
        "prompt_tokens": {"kind": "fixed", "value": 40},
        "output_tokens": {"kind": "fixed", "value": 8},
        "prompt_pool": {"num_groups": 2, "prompts_per_group": 3,
                        "system_prompt_tokens": {"kind": "fixed", "value": 64}}}}},
]  # fmt: skip

EXTREMES: list[Any] = [
    0, -1, 1, 2**31, 2**63, 10**30, 10**400, 1e308, -1e308, float("inf"), float("nan"), 1e-300,
    0.5, "", "x", "1e309", "inf", "-", None, True, [], {}, [1, 2], {"a": 1}, "😀" * 3,
    "a" * 5000, "../../etc", "/abs/path", 3.5,
]  # fmt: skip


# -- mutations -----------------------------------------------------------------------------
def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        out = [path] if path else []
        for k, v in node.items():
            out.extend(_leaves(v, (*path, k)))
        return out
    if isinstance(node, list):
        out = [path]
        for i, v in enumerate(node):
            out.extend(_leaves(v, (*path, i)))
        return out
    return [path]


def _set(node: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(node: Any, path: tuple) -> None:
    for key in path[:-1]:
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    elif isinstance(node, list) and node:
        node.pop(path[-1] if path[-1] < len(node) else -1)


def mutate_tree(rng: random.Random, tree: Any) -> Any:
    tree = json.loads(json.dumps(tree))
    for _ in range(rng.randint(1, 3)):
        leaves = [p for p in _leaves(tree) if p]
        if not leaves:
            break
        path = rng.choice(leaves)
        op = rng.random()
        if op < 0.3:  # a plausible value of another size: runs deeper into the simulator
            _set(tree, path, rng.choice([rng.randint(1, 64), round(rng.uniform(0.01, 10), 3)]))
        elif op < 0.6:
            _set(tree, path, copy.deepcopy(rng.choice(EXTREMES)))
        elif op < 0.75:
            _delete(tree, path)
        elif op < 0.85:
            if isinstance(path[-1], str):
                _set(tree, (*path[:-1], f"unknown_{rng.randint(0, 9)}"), 1)
        elif op < 0.95:
            nested: Any = 1
            for _ in range(rng.choice([5, 70, 120])):
                nested = [nested]
            _set(tree, path, nested)
        else:
            _set(tree, path, {"kind": rng.choice(["fixed", "poisson", "nope", 3])})
    return tree


SPLICES = [b"\xff\xfe", b"\x00", b"\n" * 50, b"," * 30, b'"', b"9" * 5000, b"-1", b"nan",
           b"1e999", b"[" * 2000]  # fmt: skip


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randrange(len(data) + 1)
        if op < 0.25 and data:
            del data[pos : pos + rng.randint(1, 40)]
        elif op < 0.45:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op < 0.6 and data:
            end = pos + rng.randint(1, 200)
            data[pos:pos] = data[pos:end] * rng.randint(1, 20)
        elif op < 0.75:
            data[pos:pos] = rng.choice(SPLICES)
        elif op < 0.9:
            del data[pos:]
        else:
            data[pos:pos] = b"a" * rng.choice([1000, 200_000])
    return bytes(data)


def _number(rng: random.Random, base: float) -> Any:
    return rng.choice([base, 0, -base, base * 10**rng.randint(3, 30), "x", "", None, 1e308,
                       float("nan"), 2**64, 10**25])  # fmt: skip


# -- case generators: (argv, {relative path: bytes}) ---------------------------------------
def case_scenario(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    tree = json.loads(json.dumps(BASE)) | rng.choice(VARIANTS)
    if rng.random() < 0.7:
        text = json.dumps(mutate_tree(rng, tree)).encode()  # JSON is YAML
    else:
        text = mutate_bytes(rng, yaml.safe_dump(tree).encode())
    return ["run", "{d}/s.yaml", "--quiet", "-o", "{d}/out"], {"s.yaml": text}


def _schema_paths() -> list[str]:
    from infsim.scenario.schema import Scenario

    out = []

    def walk(model: Any, prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}{name}"
            out.append(path)
            ann = field.annotation
            for arg in (*getattr(ann, "__args__", ()), ann):
                if hasattr(arg, "model_fields"):
                    walk(arg, path + ".")
                    break

    walk(Scenario, "")
    return out


def case_set(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    paths = _schema_paths()
    argv = ["run", "{d}/s.yaml", "--quiet", "-o", "{d}/out"]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([*paths, "deployment.pools.0.replicas", "a..b", "", "engine."])
        value = rng.choice(EXTREMES)
        argv += [
            "--set",
            f"{path}={yaml.safe_dump(value).strip() if not isinstance(value, str) else value}",
        ]
    return argv, {"s.yaml": yaml.safe_dump(BASE).encode()}


TRACE_SEEDS = {
    "az.csv": "TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(
        f"2023-11-16 18:15:{10 + i:02d}.{i * 37 % 1000:03d},{100 + 17 * i},{20 + i}\n"
        for i in range(12)),
    "burst.csv": "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n" + "".join(
        f"{5 * i},ChatGPT,{200 + i},{30 + i},{230 + 2 * i},Conversation log\n" for i in range(12)),
    "moon.jsonl": "".join(json.dumps({"timestamp": 100 * i, "input_length": 512 + i,
                                      "output_length": 20, "hash_ids": [i, i + 1]}) + "\n"
                          for i in range(12)),
}  # fmt: skip


def case_trace(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    name, text = rng.choice(list(TRACE_SEEDS.items()))
    data = mutate_bytes(rng, text.encode())
    if rng.random() < 0.5:
        return ["trace", "info", "{d}/" + name], {name: data}
    tree = json.loads(json.dumps(BASE))
    tree["workload"] = {"trace": {"path": name}}
    if rng.random() < 0.3:
        tree["workload"]["trace"]["rate_scale"] = _number(rng, 1.0)
    return (["run", "{d}/s.yaml", "--quiet", "-o", "{d}/out"],
            {name: data, "s.yaml": yaml.safe_dump(tree).encode()})  # fmt: skip


def _bench_seed() -> dict:
    n = 6
    return {"date": "20261123-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B",
            "tokenizer_id": "meta-llama/Llama-3.1-8B", "num_prompts": n, "request_rate": 2.0,
            "max_concurrency": None, "duration": 9.0, "completed": n, "failed": 0,
            "input_lens": [128] * n, "output_lens": [8] * n, "ttfts": [0.05] * n,
            "itls": [[0.01] * 7] * n, "latencies": [0.12] * n,
            "start_times": [100.0 + i for i in range(n)], "errors": [""] * n,
            "mean_ttft_ms": 50.0, "median_ttft_ms": 50.0, "p99_ttft_ms": 50.0,
            "output_throughput": 48.0}  # fmt: skip


def case_bench(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    seed = _bench_seed()
    if rng.random() < 0.6:
        data = json.dumps(mutate_tree(rng, seed)).encode()
    else:
        data = mutate_bytes(rng, json.dumps(seed).encode())
    return (["validate", "{d}/b.json", "--scenario", "{d}/s.yaml"],
            {"b.json": data, "s.yaml": yaml.safe_dump(BASE).encode()})  # fmt: skip


def _expression(rng: random.Random) -> str:
    atoms = ["deployment.replicas", "engine.max_num_seqs", "2", "9", "**", "*", "+", "(",
             ")", "<", ">=", "and", "or", "not", "1e9", "(1,)", "__import__", "'a'", "[",
             "]", "in", "abs(", "max(", ","]  # fmt: skip
    return " ".join(rng.choice(atoms) for _ in range(rng.randint(1, 12)))


def case_sweep(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    axes = {"engine.max_num_seqs": [16, 32], "deployment.replicas": [1, 2]}
    doc: dict[str, Any] = {"mode": "grid", "axes": axes}
    if rng.random() < 0.4:
        doc["constraints"] = [_expression(rng)]
    if rng.random() < 0.5:
        data = json.dumps(mutate_tree(rng, doc)).encode()
    elif rng.random() < 0.5:
        data = mutate_bytes(rng, json.dumps(doc).encode())
    else:
        data = json.dumps(doc).encode()
    tree = json.loads(json.dumps(BASE))
    tree["workload"]["synthetic"]["num_requests"] = 5
    argv = ["sweep", "{d}/s.yaml", "--axes", "{d}/axes.yaml", "-o", "{d}/sw",
            "--executor", "serial", "--quiet"]  # fmt: skip
    return argv, {"axes.yaml": data, "s.yaml": yaml.safe_dump(tree).encode()}


def case_results(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    """`infsim results` with a random --where / --sort on a sweep made first (in the same
    temporary directory: the argv runs the sweep, then the query)."""
    argv = ["results", "{d}/sw", "--where", _expression(rng)]
    if rng.random() < 0.5:
        argv += ["--sort", rng.choice(["cost.usd_per_hour", "x", "latency_s.ttft.p99", ""])]
    return argv, {}


VLLM_WORDS = ["--max-num-seqs", "--max-model-len", "-tp", "--tensor-parallel-size=2",
              "--no-enable-prefix-caching", "--enable-chunked-prefill", "--kv-cache-dtype",
              "--quantization", "--dtype", "--block-size", "--port", "--enforce-eager",
              "--speculative-config", "--gpu-memory-utilization", "vllm", "serve", "m",
              "--max-num-batched-tokens", "--api-server-count", "--max-num-seq", "--",
              "=", "'", '"', "32k", "2K", "0", "-1", "fp8", "awq", "x", "1e9", "0.9"]  # fmt: skip


def case_vllm_args(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    """`infsim run --from-vllm-args` with a random argument line."""
    line = " ".join(rng.choice(VLLM_WORDS) for _ in range(rng.randint(0, 10)))
    argv = ["run", "{d}/s.yaml", "--quiet", "--no-report", "-o", "{d}/out",
            "--from-vllm-args", line]  # fmt: skip
    return argv, {"s.yaml": yaml.safe_dump(BASE).encode()}


MAPPED_CSV = "t,a,b,s\n" + "".join(f"{250 * i},{100 + i},{5 + i},{i % 3}\n" for i in range(10))


def case_mapped_csv(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    """A mapped CSV trace (format csv) with a random mapping, time unit and mutated bytes."""
    names = ["arrival_s", "num_prompt_tokens", "num_output_tokens", "session_id", "x", ""]
    cols = ["t", "a", "b", "s", "zz", ""]
    mapping = ",".join(f"{rng.choice(names)}={rng.choice(cols)}" for _ in range(rng.randint(1, 5)))
    if rng.random() < 0.5:
        mapping = "arrival_s=t,num_prompt_tokens=a,num_output_tokens=b"
    data = MAPPED_CSV.encode()
    if rng.random() < 0.6:
        data = mutate_bytes(rng, data)
    unit = rng.choice(["s", "ms", "us", "ns"])
    return (["trace", "info", "{d}/t.csv", "--columns", mapping, "--time-unit", unit],
            {"t.csv": data})  # fmt: skip


def case_plan(rng: random.Random) -> tuple[list[str], dict[str, bytes]]:
    """`infsim plan` with random candidate and SLO options on a tiny workload."""
    tree = json.loads(json.dumps(BASE))
    tree["workload"]["synthetic"]["num_requests"] = 8
    argv = [
        "plan",
        "{d}/s.yaml",
        "-o",
        "{d}/plan",
        "--executor",
        "serial",  # daemonic workers
        "--gpu",
        rng.choice(["h100-sxm", "nope", "l4"]),
    ]
    for option, values in (("--tensor-parallel", ["1", "2", "3", "0", "1,2", "x", "99"]),
                           ("--weight-precision", ["fp8", "bfloat16", "fp7", ""]),
                           ("--target-rate", ["4", "0", "-1", "inf", "1e12", "x"]),
                           ("--ttft-p99", ["1", "0", "-1", "nan"])):  # fmt: skip
        if rng.random() < 0.5:
            argv += [option, rng.choice(values)]
    return argv, {"s.yaml": yaml.safe_dump(tree).encode()}


CATEGORIES = {"scenario": case_scenario, "set": case_set, "trace": case_trace,
              "bench": case_bench, "sweep": case_sweep, "results": case_results,
              "vllm_args": case_vllm_args, "mapped_csv": case_mapped_csv,
              "plan": case_plan}  # fmt: skip


# -- running ---------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm (a BaseException: the CLI's boundary must not catch it)."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang


def _init(memory_gib: float) -> None:
    limit = int(memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)


_SWEEP_CACHE: Path | None = None


def _make_sweep(tmp: Path) -> None:
    """A finished small sweep at tmp/sw (made once per worker, then copied)."""
    global _SWEEP_CACHE
    if _SWEEP_CACHE is None:
        from click.testing import CliRunner

        from infsim.cli import main

        base = Path(tempfile.mkdtemp(prefix="infsim-fuzz-sweep-"))
        tree = json.loads(json.dumps(BASE))
        tree["workload"]["synthetic"]["num_requests"] = 5
        (base / "s.yaml").write_text(yaml.safe_dump(tree))
        (base / "axes.yaml").write_text(json.dumps({"axes": {"engine.max_num_seqs": [16, 32]}}))
        CliRunner().invoke(main, ["sweep", str(base / "s.yaml"), "--axes",
                                  str(base / "axes.yaml"), "-o", str(base / "sw"),
                                  "--executor", "serial", "--quiet"])  # fmt: skip
        _SWEEP_CACHE = base / "sw"
    shutil.copytree(_SWEEP_CACHE, tmp / "sw")


def run_case(job: tuple[int, str, int, float]) -> dict:
    index, category, seed, timeout_s = job
    from click.testing import CliRunner

    from infsim.cli import main

    rng = random.Random(seed)
    argv, files = CATEGORIES[category](rng)
    tmp = Path(tempfile.mkdtemp(prefix="infsim-fuzz-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if category == "results":
            _make_sweep(tmp)
        args = [a.replace("{d}", str(tmp)) for a in argv]
        outcome, detail = "ok", ""
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            result = CliRunner().invoke(main, args, catch_exceptions=True)
        except Hang:
            outcome = "hang"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if outcome == "ok":
            output = result.output or ""
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                outcome = "traceback"
                detail = "".join(traceback.format_exception(result.exception))[-600:]
            elif result.exit_code == 0:
                outcome = "ok"
            elif "out of memory" in output:
                outcome = "memory"
            elif result.exit_code == 2 and "internal error" not in output:
                outcome = "long-message" if len(output) > MESSAGE_LIMIT else "input-error"
                detail = output[:300]
            else:
                outcome = "traceback"
                detail = output[-600:]
        sizes = {k: len(v) for k, v in files.items()}
        return {"index": index, "category": category, "seed": seed, "outcome": outcome,
                "detail": detail, "argv": argv, "files": sizes}  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("--memory-gib", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-out"))
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    args = parser.parse_args()
    cats = args.categories.split(",")
    jobs = [(i, cats[i % len(cats)], args.seed * 1_000_003 + i, args.timeout_s)
            for i in range(args.cases)]  # fmt: skip
    counts: Counter = Counter()
    bad: list[dict] = []
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, initializer=_init, initargs=(args.memory_gib,),
                  maxtasksperchild=200) as pool:  # fmt: skip
        for n, row in enumerate(pool.imap_unordered(run_case, jobs, chunksize=4), start=1):
            counts[(row["category"], row["outcome"])] += 1
            if row["outcome"] not in ("ok", "input-error"):
                bad.append(row)
            if n % 500 == 0:
                print(f"{n:,} cases: {sum(1 for r in bad if r['outcome'] == 'traceback')} "
                      f"tracebacks, {sum(1 for r in bad if r['outcome'] == 'hang')} hangs",
                      flush=True)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    table = {f"{c}/{o}": n for (c, o), n in sorted(counts.items())}
    totals = Counter()
    for (_, o), n in counts.items():
        totals[o] += n
    summary = {"cases": args.cases, "seed": args.seed, "totals": dict(totals), "by_category": table}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    (args.out / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bad))
    print(json.dumps(summary, indent=2))
    signatures = Counter(r["detail"].strip().splitlines()[-1][:160] if r["detail"] else r["outcome"]
                         for r in bad)  # fmt: skip
    for sig, n in signatures.most_common(40):
        print(f"{n:5d}  {sig}")


if __name__ == "__main__":
    main()
