#!/usr/bin/env python3
# ruff: noqa: T201  (a command-line script: it reports on stdout)
"""Start / stop a live vLLM (CPU) server of tiny-llama for infsim's live harness.

    python calibration/live/serve.py start --port 18000 --log out/server.log \
        [--max-num-seqs N] [--max-num-batched-tokens N] [--prefix-caching|--no-prefix-caching] \
        [--kv-space-gib G | --num-gpu-blocks-override N] [--profile-dir DIR]
    python calibration/live/serve.py stop --port 18000

`start` launches `vllm serve ../shared/live/tiny-llama --load-format dummy --dtype bfloat16
--max-model-len 4096 --enforce-eager --host 127.0.0.1 --port PORT …` in its own session,
writes the PID to a pid file (default /tmp/infsim-live-<port>.pid), waits for /health and
prints a JSON line with the PID, the command and the KV-cache size parsed from the log
(`CPU KV cache size: … tokens`; this CPU build uses 128-token blocks). `stop` sends SIGTERM
to exactly that PID (and its process group, i.e. the engine workers it spawned), then
SIGKILL after a grace period.

The `Server` class does the same from Python (used by matrix.py). Nothing here imports vllm.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".venv-vllm"
DEFAULT_MODEL = (REPO / ".." / "shared" / "live" / "tiny-llama").resolve()
# The model path as written on the command line (relative to the repo root, as in the docs).
MODEL_ARG = "../shared/live/tiny-llama"
BLOCK_SIZE = 128  # vLLM CPU backend's KV block size (checked against the log on start)

KV_TOKENS_RE = re.compile(r"CPU KV cache size:\s*([\d,]+)\s*tokens")
GPU_KV_TOKENS_RE = re.compile(r"GPU KV cache size:\s*([\d,]+)\s*tokens")
OVERRIDE_RE = re.compile(r"Overriding num_gpu_blocks=(\d+) with num_gpu_blocks_override=(\d+)")
BLOCK_SIZE_RE = re.compile(r"block_size[=:\s]+(\d+)")


@dataclass
class ServerConfig:
    port: int = 18000
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    prefix_caching: bool | None = None  # None = vLLM's default (on in V1)
    kv_space_gib: int | None = 2  # VLLM_CPU_KVCACHE_SPACE (whole GiB)
    num_gpu_blocks_override: int | None = None
    max_model_len: int = 4096
    profile_dir: str | None = None
    dev_mode: bool = False  # VLLM_SERVER_DEV_MODE=1 (enables POST /reset_prefix_cache)
    extra_args: list[str] = field(default_factory=list)

    def argv(self, venv: Path) -> list[str]:
        a = [
            str(venv / "bin" / "vllm"),
            "serve",
            MODEL_ARG,
            "--load-format",
            "dummy",
            "--dtype",
            "bfloat16",
            "--max-model-len",
            str(self.max_model_len),
            "--enforce-eager",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.max_num_seqs is not None:
            a += ["--max-num-seqs", str(self.max_num_seqs)]
        if self.max_num_batched_tokens is not None:
            a += ["--max-num-batched-tokens", str(self.max_num_batched_tokens)]
        if self.prefix_caching is True:
            a += ["--enable-prefix-caching"]
        elif self.prefix_caching is False:
            a += ["--no-enable-prefix-caching"]
        if self.num_gpu_blocks_override is not None:
            a += ["--num-gpu-blocks-override", str(self.num_gpu_blocks_override)]
        if self.profile_dir:
            cfg = {
                "profiler": "torch",
                "torch_profiler_dir": str(self.profile_dir),
                "torch_profiler_record_shapes": True,
            }
            a += ["--profiler-config", json.dumps(cfg, separators=(",", ":"))]
        return a + list(self.extra_args)

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        if self.kv_space_gib is not None:
            e["VLLM_CPU_KVCACHE_SPACE"] = str(int(self.kv_space_gib))
        if self.dev_mode:
            e["VLLM_SERVER_DEV_MODE"] = "1"
        e.setdefault("VLLM_LOGGING_LEVEL", "INFO")
        return e

    def command_line(self, venv: Path) -> str:
        env = (
            f"VLLM_CPU_KVCACHE_SPACE={int(self.kv_space_gib)} "
            if self.kv_space_gib is not None
            else ""
        )
        env += "VLLM_SERVER_DEV_MODE=1 " if self.dev_mode else ""
        argv = self.argv(venv)
        argv[0] = "$VENV/bin/vllm"
        return env + " ".join(shlex.quote(x) if x != "$VENV/bin/vllm" else x for x in argv)


def parse_log(text: str) -> dict:
    """KV-cache facts from a vLLM server log."""
    out: dict = {}
    m = KV_TOKENS_RE.search(text) or GPU_KV_TOKENS_RE.search(text)
    if m:
        out["kv_cache_tokens"] = int(m.group(1).replace(",", ""))
        out["block_size"] = BLOCK_SIZE
        out["num_gpu_blocks"] = out["kv_cache_tokens"] // BLOCK_SIZE
    m = OVERRIDE_RE.search(text)
    if m:
        out["num_gpu_blocks_profiled"] = int(m.group(1))
        out["num_gpu_blocks_override"] = int(m.group(2))
    return out


def _get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, ""


def post(url: str, timeout: float = 120.0) -> int:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status


def metrics(port: int) -> dict[str, float]:
    """Selected Prometheus counters of the server (summed over label sets)."""
    code, text = _get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    out: dict[str, float] = {}
    if code != 200:
        return out
    want = (
        "vllm:num_preemptions",
        "vllm:prefix_cache_queries",
        "vllm:prefix_cache_hits",
        "vllm:prompt_tokens",
        "vllm:generation_tokens",
        "vllm:request_success",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        # Server-side latency histograms (sum and count): the engine's own view of TTFT,
        # queueing, prefill and decode time, to split the client's TTFT into front end
        # (HTTP, tokenisation, streaming) and engine.
        *(
            f"vllm:{h}_{part}"
            for h in (
                "time_to_first_token_seconds",
                "e2e_request_latency_seconds",
                "request_queue_time_seconds",
                "request_prefill_time_seconds",
                "request_decode_time_seconds",
                "request_inference_time_seconds",
            )
            for part in ("sum", "count")
        ),
    )
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        for w in want:
            if name == w or name == w + "_total":
                with contextlib.suppress(ValueError):
                    out[w] = out.get(w, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


class Server:
    """A vLLM server process this harness started (and only that one is ever stopped)."""

    def __init__(self, cfg: ServerConfig, log_path: Path, venv: Path = DEFAULT_VENV):
        self.cfg, self.log_path, self.venv = cfg, Path(log_path), Path(venv)
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.info: dict = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.port}"

    def start(self, timeout_s: float = 300.0) -> dict:
        code, _ = _get(self.base_url + "/health")
        if code:
            raise RuntimeError(f"port {self.cfg.port} already serves something; not starting")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "w")  # noqa: SIM115 (the server writes to it after we return)
        self.proc = subprocess.Popen(
            self.cfg.argv(self.venv),
            cwd=REPO,
            env=self.cfg.env(),
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        t0 = time.time()
        while time.time() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"vllm serve exited with {self.proc.returncode}; see {self.log_path}"
                )
            if _get(self.base_url + "/health")[0] == 200:
                break
            time.sleep(1.0)
        else:
            self.stop()
            raise TimeoutError(f"server not healthy after {timeout_s}s; see {self.log_path}")
        self.info = {
            "pid": self.pid,
            "port": self.cfg.port,
            "startup_s": round(time.time() - t0, 1),
            "command": self.cfg.command_line(self.venv),
            **parse_log(self.log_path.read_text()),
        }
        return self.info

    def stop(self, grace_s: float = 20.0) -> None:
        if self.proc is None or self.pid is None:
            return
        stop_pid(self.pid, grace_s, self.proc)
        self.proc = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_pid(pid: int, grace_s: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM the server PID (it shuts its engine workers down); after the grace period,
    SIGKILL its process group, which it leads (start_new_session) — only what it spawned."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    t0 = time.time()
    while time.time() - t0 < grace_s:
        if proc is not None:
            if proc.poll() is not None:
                break
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
        time.sleep(0.5)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(10)
    # engine-core children (same process group) should be gone with their parent; make sure.
    time.sleep(1.0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _pidfile(port: int) -> Path:
    return Path(f"/tmp/infsim-live-{port}.pid")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--port", type=int, default=18000)
    s.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    s.add_argument("--log", type=Path, default=None)
    s.add_argument("--max-num-seqs", type=int)
    s.add_argument("--max-num-batched-tokens", type=int)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--prefix-caching", dest="prefix_caching", action="store_true", default=None)
    g.add_argument("--no-prefix-caching", dest="prefix_caching", action="store_false")
    s.add_argument("--kv-space-gib", type=int, default=2)
    s.add_argument("--num-gpu-blocks-override", type=int)
    s.add_argument("--profile-dir")
    s.add_argument("--timeout", type=float, default=300)
    t = sub.add_parser("stop")
    t.add_argument("--port", type=int, default=18000)
    a = ap.parse_args(argv)

    if a.cmd == "start":
        cfg = ServerConfig(
            port=a.port,
            max_num_seqs=a.max_num_seqs,
            max_num_batched_tokens=a.max_num_batched_tokens,
            prefix_caching=a.prefix_caching,
            kv_space_gib=a.kv_space_gib,
            num_gpu_blocks_override=a.num_gpu_blocks_override,
            profile_dir=a.profile_dir,
        )
        log = a.log or Path(f"/tmp/infsim-live-{a.port}.log")
        srv = Server(cfg, log, a.venv)
        info = srv.start(a.timeout)
        _pidfile(a.port).write_text(str(srv.pid))
        info["log"] = str(log)
        print(json.dumps(info))
        # Leave the server running detached; `stop` ends it.
        srv.proc = None
        return 0
    pf = _pidfile(a.port)
    if not pf.exists():
        print(f"no pid file {pf}", file=sys.stderr)
        return 1
    stop_pid(int(pf.read_text().strip()))
    pf.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
