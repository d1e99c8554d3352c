"""The scenario's `workload:` section (pydantic v2) and `build_trace`.

    workload:
      trace: {path: traces/x.parquet, format: auto, hash_block_size_tokens: null}
      # or
      synthetic:
        num_requests: 2000
        arrival: {kind: poisson, rate_per_s: 4}
        prompt_tokens: {kind: lognormal, mean: 1000, sigma: 0.8, min: 1, max: 8192}
        output_tokens: {kind: fixed, value: 200}
        sessions: null
      time_scale: 1.0        # or rate_scale, or target_rate_per_s (one of them)
      start_s: 0
      duration_s: null
      max_requests: null

`build_trace` applies, in this order: (1) load or generate, (2) keep arrivals in
[start_s, start_s + duration_s) of the source clock and re-base them to start_s,
(3) keep the first max_requests, (4) scale time (time_scale, or 1 / rate_scale, or the
factor that brings the kept requests' mean rate to target_rate_per_s).
So the window and the cap are in the source trace's own seconds and requests.

The mean arrival rate of a trace is its number of requests over the time from t = 0 to
its last arrival (`mean_rate_per_s`), the same figure `infsim capacity` reports, so a
trace scaled to `target_rate_per_s: 10` has exactly 10 requests per second on average.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from infsim.errors import InputError
from infsim.limits import RATE, REQUEST_TOKENS, REQUESTS, SCALE, SECONDS, TURNS, Limit
from infsim.workload import synthetic as syn
from infsim.workload.loaders import load_trace
from infsim.workload.prompt_pool import PromptPool, generate_pool_requests
from infsim.workload.sessions import derive_session_prefixes
from infsim.workload.trace import Trace

FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
"""Every model here: immutable, no unknown fields, finite numbers only (no inf or nan)."""


def _within(
    base: type, limit: Limit, subject: str, ge: float | None = None, gt: float | None = None
) -> Any:
    """`base` bounded above by `limit` (`infsim.limits`): the error names the
    bound and the environment variable that raises it; the JSON schema shows the bound."""
    check = AfterValidator(limit.validator(subject))
    return Annotated[base, Field(ge=ge, gt=gt, json_schema_extra=limit.schema()), check]


Tokens = _within(int, REQUEST_TOKENS, "the count", ge=1)
"""A token count of one request: 1 to `limits.REQUEST_TOKENS`."""
TokensOrZero = _within(int, REQUEST_TOKENS, "the count", ge=0)
TokenSize = _within(float, REQUEST_TOKENS, "the count", gt=0)
Seconds = _within(float, SECONDS, "the time", ge=0)
PositiveSeconds = _within(float, SECONDS, "the time", gt=0)
Rate = _within(float, RATE, "the rate", gt=0)
Scale = _within(float, SCALE, "the factor", gt=0)
Requests = _within(int, REQUESTS, "the number of requests", ge=1)

MAX_SIGMA = 10.0
"""Largest lognormal sigma: e^10 is a spread of 22,000x per standard deviation."""
MAX_CV = 100.0
"""Largest gamma coefficient of variation (shape 1e-4: nearly every gap is zero)."""


class TraceSource(BaseModel):
    """Replay a trace file."""

    model_config = FROZEN
    path: str = Field(description="Trace file, relative to the scenario file's directory.")
    format: str = Field("auto", description="azure, burstgpt, vidur, mooncake, llmservingsim, "
                        "vllm-bench, infsim, csv (with columns) or auto (by extension and "
                        "first line).")  # fmt: skip
    hash_block_size_tokens: Tokens | None = Field(
        None, description="Override the format's prefix hash block size (tokens)."
    )
    drop_zero_output: bool = Field(
        False, description="Drop rows with 0 output tokens (failed requests) instead of failing."
    )
    drop_failed: bool = Field(
        False, description="vllm-bench: drop requests with an error instead of failing."
    )
    session_block_tokens: Tokens | None = Field(
        16,
        description="For traces with session ids but no hash ids: derive prefix ids from "
        "sessions (each turn extends the previous prompt and answer) at this block size; "
        "null = no prefix identity from sessions.",
    )
    columns: dict[Literal["arrival_s", "num_prompt_tokens", "num_output_tokens", "session_id"],
                  str] | None = Field(
        None,
        description="Format csv: which column of the file holds each infsim column "
        "(arrival_s, num_prompt_tokens, num_output_tokens required; session_id optional).",
    )  # fmt: skip
    time_unit: Literal["s", "ms", "us", "ns"] = Field(
        "s", description="Format csv: the unit of the arrival column."
    )

    @model_validator(mode="after")
    def _mapping(self) -> TraceSource:
        if self.columns is not None and self.format not in ("auto", "csv"):
            raise ValueError(f"columns is for format csv; format {self.format!r} knows its own")
        if self.format == "csv" and self.columns is None:
            raise ValueError("format csv needs columns: {arrival_s: …, num_prompt_tokens: …, "
                             "num_output_tokens: …}")  # fmt: skip
        if self.time_unit != "s" and self.columns is None:
            raise ValueError("time_unit is for format csv (with columns)")
        return self


# -- arrival processes -------------------------------------------------------------------


class PoissonSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["poisson"] = Field(description="Poisson arrivals (exponential gaps).")
    rate_per_s: Rate = Field(description="Mean arrival rate, requests per second.")

    def build(self) -> syn.ArrivalProcess:
        return syn.PoissonArrivals(self.rate_per_s)


class GammaSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["gamma"] = Field(description="Gamma-distributed gaps (burstiness by CV).")
    rate_per_s: Rate = Field(description="Mean arrival rate, requests per second.")
    cv: float = Field(
        gt=0, le=MAX_CV, description="Coefficient of variation of the gaps; 1 = Poisson."
    )

    def build(self) -> syn.ArrivalProcess:
        return syn.GammaArrivals(self.rate_per_s, self.cv)


ArrivalSpec = Annotated[PoissonSpec | GammaSpec, Field(discriminator="kind")]


# -- length distributions ----------------------------------------------------------------


class FixedSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["fixed"] = Field(description="Every request gets `value` tokens.")
    value: Tokens = Field(description="Token count (or turn count, as sessions.turns).")

    def build(self, base_dir: Path) -> syn.LengthSampler:
        return syn.FixedLengths(self.value)


class UniformSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["uniform"] = Field(description="Integers uniform on [min, max].")
    min: Tokens = Field(description="Smallest token count (inclusive).")
    max: Tokens = Field(description="Largest token count (inclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> UniformSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self

    def build(self, base_dir: Path) -> syn.LengthSampler:
        return syn.UniformLengths(self.min, self.max)


class LognormalSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["lognormal"] = Field(description="Lognormal, rounded and clipped.")
    mean: TokenSize | None = Field(None, description="Mean before clipping (or give median).")
    median: TokenSize | None = Field(None, description="Median (or give mean).")
    sigma: float = Field(
        gt=0, le=MAX_SIGMA, description="Standard deviation of the underlying normal."
    )
    min: Tokens = Field(1, description="Clip below to this many tokens.")
    max: Tokens = Field(description="Clip above to this many tokens.")

    @model_validator(mode="after")
    def _one_centre(self) -> LognormalSpec:
        if (self.mean is None) == (self.median is None):
            raise ValueError("give exactly one of mean or median")
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self

    def build(self, base_dir: Path) -> syn.LengthSampler:
        if self.mean is not None:
            return syn.LognormalLengths.from_mean(self.mean, self.sigma, self.min, self.max)
        return syn.LognormalLengths.from_median(self.median, self.sigma, self.min, self.max)


class EmpiricalSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["empirical"] = Field(description="Resample observed values.")
    values: tuple[Tokens, ...] | None = Field(
        None, min_length=1, description="Explicit token counts to draw from (or give trace)."
    )
    trace: TraceSource | None = Field(None, description="Trace file to draw a column from.")
    column: Literal["num_prompt_tokens", "num_output_tokens"] | None = Field(
        None, description="Which trace column to resample (with `trace`)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> EmpiricalSpec:
        if (self.values is None) == (self.trace is None):
            raise ValueError("give exactly one of values or trace")
        if self.trace is not None and self.column is None:
            raise ValueError("with trace, give column: num_prompt_tokens or num_output_tokens")
        return self

    def build(self, base_dir: Path) -> syn.LengthSampler:
        if self.values is not None:
            return syn.EmpiricalLengths(self.values)
        trace = _load(self.trace, base_dir)
        return syn.EmpiricalLengths(tuple(getattr(trace, self.column).tolist()))


LengthSpec = Annotated[
    FixedSpec | UniformSpec | LognormalSpec | EmpiricalSpec, Field(discriminator="kind")
]


# -- sessions ----------------------------------------------------------------------------


class FixedThinkSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["fixed"] = Field(description="Constant think time.")
    value_s: Seconds = Field(description="Seconds between a turn's arrival and the next.")


class ExponentialThinkSpec(BaseModel):
    model_config = FROZEN
    kind: Literal["exponential"] = Field(description="Exponential think time.")
    mean_s: PositiveSeconds = Field(
        description="Mean seconds between a turn's arrival and the next."
    )


class SessionsSpec(BaseModel):
    """Multi-turn chat sessions (see infsim/workload/synthetic.py for the model)."""

    model_config = FROZEN
    num_sessions: Requests = Field(description="Number of sessions; `arrival` spaces starts.")
    turns: LengthSpec = Field(description="Turns per session (a count distribution, >= 1).")
    think_time: FixedThinkSpec | ExponentialThinkSpec = Field(
        discriminator="kind",
        description="Gap from one turn's *arrival* to the next turn's arrival (open loop).",
    )
    system_prompt_tokens: TokensOrZero = Field(0, description="Shared prefix of every session.")
    hash_block_size_tokens: Tokens = Field(16, description="Prefix hash block size.")
    max_context_tokens: Tokens | None = Field(
        None, description="End a session before a turn whose prompt+output exceeds this."
    )

    @model_validator(mode="before")
    @classmethod
    def _turns_bounded(cls, data: Any) -> Any:
        """Turns have their own bound (`limits.TURNS`), checked before the length
        distribution's token bound would speak of tokens."""
        turns = data.get("turns") if isinstance(data, dict) else None
        if not isinstance(turns, dict):
            return data
        values = turns.get("values")
        candidates = [turns.get("value"), turns.get("max")]
        candidates += values if isinstance(values, list | tuple) else []
        numbers = [v for v in candidates if isinstance(v, int | float) and not isinstance(v, bool)]
        most = max(numbers, default=None)
        if most is not None and most > TURNS.value():
            raise ValueError(f"turns: {TURNS.message('the largest number of turns', most)}")
        return data


class PromptPoolSpec(BaseModel):
    """A pool of N groups × M prompts that requests are drawn from, as benchmark clients
    send them (infsim/workload/prompt_pool.py): each group has its own system prompt, each
    prompt its own question (`prompt_tokens`), so repeated prompts and shared system
    prompts hit the prefix cache."""

    model_config = FROZEN
    num_groups: Requests = Field(description="Groups, each with its own system prompt.")
    prompts_per_group: Requests = Field(description="Distinct prompts (questions) per group.")
    system_prompt_tokens: LengthSpec = Field(
        description="System prompt length, drawn once per group."
    )
    choice: Literal["cycle", "uniform"] = Field(
        "uniform",
        description="How each request picks its prompt: cycle (request i → prompt i mod "
        "N·M, as a client iterating a dataset) or uniform (drawn at random).",
    )
    hash_block_size_tokens: Tokens = Field(16, description="Prefix hash block size.")


class SyntheticSource(BaseModel):
    """Generated requests. With `sessions`, prompt_tokens is each turn's new user text; with
    `prompt_pool`, each pool prompt's question after its group's system prompt."""

    model_config = FROZEN
    num_requests: Requests | None = Field(None, description="Requests (without sessions).")
    arrival: ArrivalSpec = Field(description="Request (or session-start) arrival process.")
    prompt_tokens: LengthSpec = Field(description="Prompt length (new user tokens per turn).")
    output_tokens: LengthSpec = Field(description="Output length per request / turn.")
    sessions: SessionsSpec | None = Field(None, description="Multi-turn sessions, or null.")
    prompt_pool: PromptPoolSpec | None = Field(
        None, description="Draw single-turn prompts from a pool (groups × prompts), or null."
    )

    @model_validator(mode="after")
    def _count(self) -> SyntheticSource:
        if (self.num_requests is None) == (self.sessions is None):
            raise ValueError(
                "give num_requests (single-turn) or sessions (then sessions.num_sessions and "
                "turns set the count), not both and not neither"
            )
        if self.prompt_pool is not None and self.sessions is not None:
            raise ValueError(
                "prompt_pool draws single-turn requests (with num_requests); it cannot be "
                "combined with sessions"
            )
        return self


class WorkloadSpec(BaseModel):
    """The scenario's `workload:` section: one source plus window and scaling."""

    model_config = FROZEN
    trace: TraceSource | None = Field(None, description="Replay a trace file.")
    synthetic: SyntheticSource | None = Field(None, description="Generate requests.")
    time_scale: Scale | None = Field(None, description="Multiply inter-arrival times.")
    rate_scale: Scale | None = Field(None, description="Multiply the arrival rate.")
    target_rate_per_s: Rate | None = Field(
        None,
        description="Scale arrival times so that the mean arrival rate (requests kept over "
        "the time to the last arrival) is this many requests per second; the request mix "
        "and the shape of the arrivals (bursts, gaps) stay the trace's. Not with "
        "time_scale or rate_scale.",
    )
    start_s: Seconds = Field(0.0, description="Window start in the source's seconds.")
    duration_s: PositiveSeconds | None = Field(None, description="Window length; null = to end.")
    max_requests: int | None = Field(None, ge=1, description="Keep at most this many requests.")
    max_concurrency: int | None = Field(
        None,
        ge=1,
        description=(
            "Closed-loop client: at most this many requests in flight. A request is sent "
            "at its arrival time or when an earlier one finishes, whichever is later, and "
            "its latencies count from that send time (vllm bench serve --max-concurrency). "
            "With all arrivals at 0 this is a pure closed loop of N users; null = open loop."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadSpec:
        if (self.trace is None) == (self.synthetic is None):
            raise ValueError("give exactly one of workload.trace or workload.synthetic")
        given = [
            name
            for name in ("time_scale", "rate_scale", "target_rate_per_s")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"{' and '.join(given)} each set the arrival rate; give one of "
                "time_scale, rate_scale or target_rate_per_s, "
                f"{'not both' if len(given) == 2 else 'not all three'}"
            )
        return self


def _load(source: TraceSource, base_dir: Path) -> Trace:
    path = Path(source.path)
    trace = load_trace(
        path if path.is_absolute() else base_dir / path,
        source.format,
        hash_block_size_tokens=source.hash_block_size_tokens,
        drop_zero_output=source.drop_zero_output,
        drop_failed=source.drop_failed,
        columns=source.columns,
        time_unit=source.time_unit,
    )
    if source.session_block_tokens is None:
        return trace
    return derive_session_prefixes(trace, source.session_block_tokens)


def generate(spec: SyntheticSource, *, base_dir: Path, rng: np.random.Generator) -> Trace:
    """Run the synthetic generator a `synthetic:` block describes."""
    arrivals = spec.arrival.build()
    prompt = spec.prompt_tokens.build(base_dir)
    output = spec.output_tokens.build(base_dir)
    if spec.prompt_pool is not None:
        p = spec.prompt_pool
        pool = PromptPool(p.num_groups, p.prompts_per_group, p.system_prompt_tokens.build(base_dir),
                          p.choice, p.hash_block_size_tokens)  # fmt: skip
        return generate_pool_requests(spec.num_requests, arrivals, prompt, output, pool, rng)
    if spec.sessions is None:
        return syn.generate_requests(spec.num_requests, arrivals, prompt, output, rng)
    s = spec.sessions
    think = s.think_time
    sessions = syn.ChatSessions(
        num_sessions=s.num_sessions,
        session_arrivals=arrivals,
        turns=s.turns.build(base_dir),
        user_tokens=prompt,
        output_tokens=output,
        think_time=syn.FixedThinkTime(think.value_s)
        if think.kind == "fixed"
        else syn.ExponentialThinkTime(think.mean_s),
        system_prompt_tokens=s.system_prompt_tokens,
        hash_block_size_tokens=s.hash_block_size_tokens,
        max_context_tokens=s.max_context_tokens,
    )
    return syn.generate_sessions(sessions, rng)


def build_trace(spec: WorkloadSpec, *, base_dir: Path, rng: np.random.Generator) -> Trace:
    """Load or generate, then window, cap and scale (order in the module docstring)."""
    if spec.trace is not None:
        trace = _load(spec.trace, base_dir)
    else:
        trace = generate(spec.synthetic, base_dir=base_dir, rng=rng)
    end_s = None if spec.duration_s is None else spec.start_s + spec.duration_s
    if trace.num_requests == 0:
        notes = f" ({'; '.join(trace.notes)})" if trace.notes else ""
        raise InputError(f"{trace.source}: the trace holds no request to simulate{notes}")
    source_span_s = trace.duration_s
    trace = trace.slice(spec.start_s, end_s, spec.max_requests)
    if trace.num_requests == 0:
        window = f"[{spec.start_s:g}, {'end' if end_s is None else f'{end_s:g}'})"
        raise InputError(
            f"{trace.source}: workload.start_s/duration_s keep no request: the window "
            f"{window} s holds no arrival of the source, whose arrivals run from 0 to "
            f"{source_span_s:g} s (the window is in the source's seconds, before "
            "time_scale/rate_scale)"
        )
    if trace.num_requests > REQUESTS.value():
        raise InputError(
            f"{trace.source}: "
            f"{REQUESTS.message('the number of requests to simulate', trace.num_requests)}; "
            "or simulate part of it with workload.max_requests or workload.duration_s"
        )
    if spec.time_scale is not None:
        trace = trace.scale_time(spec.time_scale)
    if spec.rate_scale is not None:
        trace = trace.scale_rate(spec.rate_scale)
    if spec.target_rate_per_s is not None:
        trace = trace.scale_rate(spec.target_rate_per_s / mean_rate_per_s(trace))
    return trace


def mean_rate_per_s(trace: Trace) -> float:
    """Requests per second from t = 0 to the last arrival; an `InputError` when that time
    is 0 (a single request, or every request at t = 0: a closed-loop benchmark has no
    arrival rate to scale)."""
    if trace.num_requests < 2 or trace.duration_s <= 0:
        raise InputError(
            f"{trace.source}: workload.target_rate_per_s: the workload's "
            f"{trace.num_requests} request(s) all arrive at t = 0, so it has no arrival "
            "rate to scale; use a trace or generator with arrivals spread in time, or "
            "remove target_rate_per_s"
        )
    return trace.num_requests / trace.duration_s


def parse_model(model: type[BaseModel], data: object, *, source: str, section: str) -> BaseModel:
    """Validate `data` as `model`; pydantic errors become one `InputError` with dotted paths.

    `source` names the file, `section` the dotted path of `data` in it (e.g. "workload").
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, (section, *err['loc'])))}: {err['msg']}" for err in exc.errors()
        )
        raise InputError(f"{source}: {problems}") from None
