"""Shared helpers of the live harness: machine-load checks, bench commands, result trimming."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL_ARG = "../shared/live/tiny-llama"
CLK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting: how busy is the machine *without* this harness's processes? ------------


def _cpu_busy_total() -> float:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK


def proc_stat(pid: int | str) -> tuple[int, float] | None:
    """(ppid, cpu seconds: user + system) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2 :].split()  # after "(comm) ": comm may hold spaces
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, cpu seconds) for every visible process."""
    out: dict[int, tuple[int, float]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and (stat := proc_stat(d)) is not None:
            out[int(d)] = stat
    return out


def _descendants(table: dict[int, tuple[int, float]], roots: set[int]) -> set[int]:
    mine = {r for r in roots if r in table}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in table.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    return mine


class LoadSampler:
    """Samples, every `period` s, total busy cores and the busy cores of the harness's own
    process trees (`roots`: server PID, this process); foreign = total - own."""

    def __init__(self, roots: set[int], period: float = 2.0):
        self.roots, self.period = set(roots), period
        self.samples: list[tuple[float, float, float]] = []  # (t, total_cores, own_cores)
        self._stop = threading.Event()
        self._thr: threading.Thread | None = None

    def _snap(self):
        tab = proc_table()
        mine = _descendants(tab, self.roots)
        return time.time(), _cpu_busy_total(), {p: tab[p][1] for p in mine}

    def _run(self):
        prev = self._snap()
        while not self._stop.wait(self.period):
            cur = self._snap()
            dt = cur[0] - prev[0]
            own = sum(cur[2][p] - prev[2][p] for p in cur[2] if p in prev[2])
            self.samples.append((cur[0], (cur[1] - prev[1]) / dt, own / dt))
            prev = cur

    def __enter__(self):
        self._thr = threading.Thread(target=self._run, daemon=True)
        self._thr.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thr:
            self._thr.join()

    def summary(self) -> dict:
        if not self.samples:
            return {}
        tot = [s[1] for s in self.samples]
        own = [s[2] for s in self.samples]
        foreign = [max(0.0, t - o) for t, o in zip(tot, own, strict=False)]
        return {
            "samples": len(self.samples),
            "total_busy_cores_mean": round(sum(tot) / len(tot), 3),
            "own_busy_cores_mean": round(sum(own) / len(own), 3),
            "foreign_busy_cores_mean": round(sum(foreign) / len(foreign), 3),
            "foreign_busy_cores_max": round(max(foreign), 3),
        }


def foreign_cores(roots: set[int], window_s: float = 5.0) -> float:
    s = LoadSampler(roots, period=window_s)
    with s:
        time.sleep(window_s + 0.3)
    return s.summary().get("foreign_busy_cores_mean", 0.0)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


def wait_quiet(
    roots: set[int], max_foreign: float = 0.7, max_wait_s: float = 300.0, log=print
) -> dict:
    """Wait (30 s steps, up to max_wait_s) until other people's work uses < max_foreign cores.
    (The 1-min load average includes this harness's own server and client, so the check
    measures the CPU time of everything outside our process trees.)"""
    t0 = time.time()
    while True:
        fc = foreign_cores(roots)
        if fc <= max_foreign or time.time() - t0 > max_wait_s:
            return {
                "foreign_busy_cores_before": round(fc, 3),
                "loadavg_before": loadavg(),
                "waited_s": round(time.time() - t0, 1),
                "quiet": fc <= max_foreign,
            }
        log(f"  machine busy ({fc:.2f} foreign cores, load {loadavg()}); waiting 30 s")
        time.sleep(30)


# -- vllm bench serve -----------------------------------------------------------------------


def bench_argv(  # noqa: PLR0913 (mirrors the bench CLI; all keyword-only)
    venv: Path,
    port: int,
    result_dir: Path,
    *,
    dataset: str = "random",
    input_len: int | None = None,
    output_len: int | None = None,
    num_prompts: int,
    rate: float | str = "inf",
    max_concurrency: int | None = None,
    seed: int = 1,
    trace: Path | None = None,
    chunk_hash_size: int = 128,
    extra: list[str] | None = None,
) -> list[str]:
    a = [
        str(venv / "bin" / "vllm"),
        "bench",
        "serve",
        "--backend",
        "vllm",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--model",
        MODEL_ARG,
        "--tokenizer",
        MODEL_ARG,
        "--dataset-name",
        dataset,
        "--num-prompts",
        str(num_prompts),
    ]
    if dataset == "random":
        a += [
            "--random-input-len",
            str(input_len),
            "--random-output-len",
            str(output_len),
            "--request-rate",
            str(rate),
        ]
    elif dataset == "timed_trace":
        a += [
            "--dataset-path",
            str(trace),
            "--timed-trace-chunk-hash-size",
            str(chunk_hash_size),
            "--timed-trace-sec-multiplier",
            "0.001",
        ]
    if max_concurrency is not None:
        a += ["--max-concurrency", str(max_concurrency)]
    a += [
        "--seed",
        str(seed),
        "--ignore-eos",
        "--save-result",
        "--save-detailed",
        "--result-dir",
        str(result_dir),
        "--result-filename",
        "result.json",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--metric-percentiles",
        "50,90,99",
    ]
    return a + list(extra or [])


def shell_line(argv: list[str], venv: Path, env: dict[str, str] | None = None) -> str:
    out = []
    for x in argv:
        if x.startswith(str(venv)):
            out.append("$VENV" + x[len(str(venv)) :])
        elif x.startswith(str(REPO) + "/"):
            out.append(x[len(str(REPO)) + 1 :])
        else:
            out.append(shlex.quote(x))
    pre = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    return (pre + " " if pre else "") + " ".join(out)


def run_bench(
    argv: list[str], log_path: Path, env_extra: dict[str, str] | None = None, timeout_s: float = 600
) -> int:
    env = dict(os.environ)
    env.update(env_extra or {})
    with open(log_path, "w") as f:
        p = subprocess.run(
            argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout_s
        )
    return p.returncode


def trim_result(path: Path) -> dict:
    """Drop generated text (large, meaningless with dummy weights); keep everything else."""
    d = json.loads(path.read_text())
    if "generated_texts" in d:
        d["generated_texts"] = ["" for _ in d["generated_texts"]]

    def r(x):  # seconds to the microsecond (measurement noise is far larger)
        if isinstance(x, float):
            return round(x, 6)
        if isinstance(x, list):
            return [r(y) for y in x]
        return x

    for k in ("ttfts", "itls", "latencies", "start_times", "queue_times"):
        if k in d:
            d[k] = r(d[k])
    path.write_text(json.dumps(d, separators=(",", ":")))
    return d
