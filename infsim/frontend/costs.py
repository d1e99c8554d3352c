"""What the API server costs per request and per streamed step, and where the numbers come
from.

vLLM's API server (one asyncio process per `--api-server-count`) does host-CPU work on the
request path — HTTP parsing, chat template, tokenisation, hand-off to the engine core —
and on the way back for every engine step that emits tokens: it receives the engine
core's output message (a fixed cost per message) and detokenises and writes one SSE chunk
per request (a cost per token). Each cost resolves, in order, from the scenario's
`frontend` section, the calibration table's fitted `frontend` rows (the one-in-flight TTFT
residual of a live engine: request path + the first token's way back), or the defaults
below.

Defaults (`HOST_DEFAULTS`): vLLM 0.32's API server measured on infsim's live host
(validation/live/overhead/frontend-cpu: CPU seconds of the API-server process over
closed-loop runs, 64-request differences, derived by `defaults.py` there): 1.90 ms +
4.27 µs per prompt token per request, 0.94 ms per output message + 47 µs per streamed
token. They are one host's numbers (a shared 2-core cloud VM); a GPU server's CPU may be
faster. The front end is host work of the same kind whichever accelerator the engine runs
on, so they apply to GPU deployments too unless a table or the scenario says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infsim.core.fit import line_fit

if TYPE_CHECKING:
    import pandas as pd

HOST_DEFAULTS = {
    "request_s": 1.90e-3,
    "request_per_prompt_token_s": 4.27e-6,
    "output_per_step_s": 0.94e-3,
    "output_per_token_s": 47e-6,
}
HOST_SOURCE = "vLLM 0.32 API server measured on infsim's live host (frontend-cpu)"


@dataclass(frozen=True, slots=True)
class FrontendCosts:
    """Resolved API-server costs of one replica (seconds)."""

    api_server_count: int
    request_s: float
    request_per_prompt_token_s: float
    output_per_step_s: float
    output_per_token_s: float
    queueing: bool = True
    source: str = ""

    def request_work_s(self, num_prompt_tokens: int) -> float:
        """API-server time before the engine sees a request."""
        return self.request_s + self.request_per_prompt_token_s * num_prompt_tokens

    def egress_s(self, num_tokens: int) -> float:
        """From a step's end to the client seeing a token of it, on average over the
        step's `num_tokens` tokens: each API server takes the output message (fixed cost)
        and writes its share of the tokens one after another, so a token waits for about
        half of them."""
        share = num_tokens / self.api_server_count
        return self.output_per_step_s + self.output_per_token_s * (share + 1.0) / 2.0

    def stream_work_s(self, num_steps: int, num_tokens: int) -> float:
        """API-server time spent streaming `num_steps` steps of `num_tokens` tokens in all
        (every server gets every step's message)."""
        return (self.output_per_step_s * num_steps * self.api_server_count
                + self.output_per_token_s * num_tokens)  # fmt: skip

    @property
    def is_zero(self) -> bool:
        return not (self.request_s or self.request_per_prompt_token_s
                    or self.output_per_step_s or self.output_per_token_s)  # fmt: skip


def fitted_request_path(rows: pd.DataFrame | None) -> tuple[float, float] | None:
    """(fixed s, s per prompt token) of a calibration's `frontend` rows, or None."""
    if rows is None or "op" not in rows:
        return None
    front = rows[rows["op"] == "frontend"]
    if front.empty:
        return None
    tokens = front["num_tokens"].to_numpy(float)
    intercept, slope = line_fit(tokens, front["time_s"].to_numpy(float))
    return max(float(intercept), 0.0), max(float(slope), 0.0)


def resolve_costs(spec, rows: pd.DataFrame | None, table: str | None) -> FrontendCosts:
    """The scenario's `frontend` section (`FrontendSpec`) with nulls filled: output costs
    from the defaults; request costs from the table's fitted line (its intercept net of the
    first token's way back, which the fit also contains), else the defaults."""
    output_step = _pick(spec.output_per_step_s, HOST_DEFAULTS["output_per_step_s"])
    output_token = _pick(spec.output_per_token_s, HOST_DEFAULTS["output_per_token_s"])
    line = fitted_request_path(rows)
    sources = []
    if line is not None:
        back = output_step + output_token  # one token: egress_s(1) at one server
        fixed = max(line[0] - back, 0.0)
        per_token = line[1]
        sources.append(f"request path fitted in calibration {table}")
    else:
        fixed = HOST_DEFAULTS["request_s"]
        per_token = HOST_DEFAULTS["request_per_prompt_token_s"]
    given = [n for n in HOST_DEFAULTS if getattr(spec, n) is not None]
    if given:
        sources.append("scenario: " + ", ".join(given))
    if len(given) < len(HOST_DEFAULTS) - (2 if line is not None else 0):
        sources.append(HOST_SOURCE)
    return FrontendCosts(
        api_server_count=spec.api_server_count,
        request_s=_pick(spec.request_s, fixed),
        request_per_prompt_token_s=_pick(spec.request_per_prompt_token_s, per_token),
        output_per_step_s=output_step,
        output_per_token_s=output_token,
        queueing=spec.queueing,
        source="; ".join(sources),
    )


def _pick(value: float | None, default: float) -> float:
    return float(default if value is None else value)


def frontend_costs(spec) -> FrontendCosts:
    """FrontendCosts of a resolved `frontend` section (every cost filled by resolve())."""
    return FrontendCosts(**spec.model_dump())
