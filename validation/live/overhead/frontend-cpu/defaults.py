"""Derive infsim's default API-server costs (infsim/frontend/costs.py) from cpu.csv.

    python validation/live/overhead/frontend-cpu/defaults.py

cpu.csv holds the CPU seconds of vLLM's API server (one asyncio process, vLLM 0.32) over
closed-loop runs of 16 and 80 requests per condition (README.md here); the difference
over the 64 extra requests cancels every fixed cost. Two rounds.

- Intake (`intake-in128`, `intake-in1024`: one output token): API-server CPU per request vs
  prompt tokens gives a line, fixed + per prompt token. Round 1 of `intake-in128` overlapped
  another job (README) and is left out. A one-token request also pays one output message
  and one token of streaming, which the streaming fit below prices; the request-path fixed
  cost is the intercept minus that.
- Streaming (`stream-c4/c16/c64`: 128 or 64 outputs at concurrency 4/16/64): CPU per
  request minus its intake, against the engine steps and tokens it streamed: the 64 extra
  requests take 64/C waves of (output − 1) steps each, and stream 64 · (output − 1)
  tokens. Least squares over the six rows gives per step + per token.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
EXTRA = 64  # requests: the 80-request run minus the 16-request one


def per_request_cpu() -> dict[tuple[str, str], dict]:
    rows = list(csv.DictReader((HERE / "cpu.csv").open()))
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        out.setdefault((r["condition"], r["round"]), {})[int(r["num_prompts"])] = r
    return {
        key: {
            "api_s": (float(v[80]["api_cpu_s"]) - float(v[16]["api_cpu_s"])) / EXTRA,
            "prompt": int(v[80]["prompt"]),
            "output": int(v[80]["output"]),
            "concurrency": int(v[80]["concurrency"]),
        }
        for key, v in out.items()
    }


def fit() -> dict[str, float]:
    cpu = per_request_cpu()
    intake = [(v["prompt"], v["api_s"]) for (cond, rnd), v in cpu.items()
              if cond.startswith("intake") and (cond, rnd) != ("intake-in128", "1")]  # fmt: skip
    x, y = np.array(intake, dtype=float).T
    slope, intercept = np.polyfit(x, y, 1)
    a, b = [], []
    for (cond, _), v in sorted(cpu.items()):
        if not cond.startswith("stream"):
            continue
        steps = (EXTRA / v["concurrency"]) * (v["output"] - 1) / EXTRA  # per request
        tokens = v["output"] - 1
        a.append([steps, tokens])
        b.append(v["api_s"] - (intercept + slope * v["prompt"]))
    (per_step, per_token), *_ = np.linalg.lstsq(np.array(a), np.array(b), rcond=None)
    return {
        "request_s": float(intercept - per_step - per_token),
        "request_per_prompt_token_s": float(slope),
        "output_per_step_s": float(per_step),
        "output_per_token_s": float(per_token),
    }


if __name__ == "__main__":
    for name, value in fit().items():
        print(f"{name}: {value:.4g}")  # noqa: T201
