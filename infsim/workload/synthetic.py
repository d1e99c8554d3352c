"""Synthetic workloads, deterministic given a `numpy.random.Generator`.

Two generators:

- `generate_requests`: independent single-turn requests; arrivals from an
  `ArrivalProcess`, prompt and output lengths from `LengthSampler`s; no prefix ids.
- `generate_sessions`: multi-turn chat sessions (`ChatSessions`). Each session's token
  history is append-only::

      turn 1 prompt:  [system S][user 1]
      turn 1 output:                    [answer 1]
      turn 2 prompt:  [system S][user 1][answer 1][user 2]
      ...

  so every turn's prompt is the previous prompt + previous answer + new user tokens.
  `prefix_hash_ids` number the *full* `hash_block_size_tokens` blocks of prompt + output:
  blocks lying wholly inside the system prompt get ids 0..S//B-1 in every session (shared
  by everyone); every other block gets an id unique to its session, the same in every turn
  of that session. Sharing is therefore exact at block granularity (a partial last block
  is never hashed, as in vLLM).

  Timing is open loop: turn k+1 arrives `think time` after turn k *arrived* (not after it
  finished — the trace cannot know the simulated latency). Choose think times well above
  the expected end-to-end latency, or the next turn arrives before its answer exists.

Random draws happen in a fixed order (documented on each generator), so the same seed
gives the same trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from infsim.errors import InputError
from infsim.limits import HASH_IDS, REQUEST_TOKENS, REQUESTS, TURNS
from infsim.workload.columns import hash_ids_from_runs
from infsim.workload.trace import Trace


class ArrivalProcess(Protocol):
    def gaps_s(self, num: int, rng: np.random.Generator) -> np.ndarray: ...


class LengthSampler(Protocol):
    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class PoissonArrivals:
    """Exponential inter-arrival gaps with mean 1 / rate_per_s."""

    rate_per_s: float

    def gaps_s(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return rng.exponential(1.0 / self.rate_per_s, num)


@dataclass(frozen=True)
class GammaArrivals:
    """Gamma inter-arrival gaps: mean 1 / rate_per_s, coefficient of variation `cv`.

    shape = 1 / cv², scale = cv² / rate. cv = 1 is Poisson, and then the draws are
    exactly `PoissonArrivals`' (same stream), so the two agree bit for bit.
    """

    rate_per_s: float
    cv: float

    def gaps_s(self, num: int, rng: np.random.Generator) -> np.ndarray:
        if self.cv == 1.0:
            return PoissonArrivals(self.rate_per_s).gaps_s(num, rng)
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.cv**2 / self.rate_per_s, num)


def arrival_times_s(process: ArrivalProcess, num: int, rng: np.random.Generator) -> np.ndarray:
    """Cumulative gaps: the first arrival is one gap after t = 0."""
    return np.cumsum(process.gaps_s(num, rng))


@dataclass(frozen=True)
class FixedLengths:
    value: int

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(num, self.value, dtype=np.int64)


@dataclass(frozen=True)
class UniformLengths:
    """Integers uniform on [min_tokens, max_tokens], both inclusive."""

    min_tokens: int
    max_tokens: int

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.min_tokens, self.max_tokens + 1, num, dtype=np.int64)


@dataclass(frozen=True)
class LognormalLengths:
    """exp(Normal(mu, sigma)) rounded to integers and clipped to [min_tokens, max_tokens]."""

    mu: float
    sigma: float
    min_tokens: int
    max_tokens: int

    @classmethod
    def from_mean(cls, mean: float, sigma: float, min_tokens: int, max_tokens: int):
        """Unclipped mean = `mean` (mu = ln(mean) − sigma² / 2)."""
        return cls(float(np.log(mean) - sigma**2 / 2), sigma, min_tokens, max_tokens)

    @classmethod
    def from_median(cls, median: float, sigma: float, min_tokens: int, max_tokens: int):
        return cls(float(np.log(median)), sigma, min_tokens, max_tokens)

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        values = np.rint(rng.lognormal(self.mu, self.sigma, num))
        return np.clip(values, self.min_tokens, self.max_tokens).astype(np.int64)


@dataclass(frozen=True)
class EmpiricalLengths:
    """Draws with replacement from observed values (e.g. a trace column)."""

    values: tuple[int, ...]

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(np.asarray(self.values, dtype=np.int64), size=num, replace=True)


@dataclass(frozen=True)
class FixedThinkTime:
    value_s: float

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(num, self.value_s, dtype=np.float64)


@dataclass(frozen=True)
class ExponentialThinkTime:
    mean_s: float

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return rng.exponential(self.mean_s, num)


def generate_requests(
    num_requests: int,
    arrivals: ArrivalProcess,
    prompt_tokens: LengthSampler,
    output_tokens: LengthSampler,
    rng: np.random.Generator,
) -> Trace:
    """Independent single-turn requests. Draw order: gaps, prompt lengths, output lengths."""
    if num_requests < 1:
        raise InputError(f"num_requests is {num_requests}; must be >= 1")
    REQUESTS.check(num_requests, "num_requests", "synthetic workload")
    columns = {
        "arrival_s": arrival_times_s(arrivals, num_requests, rng),
        "num_prompt_tokens": np.maximum(prompt_tokens.sample(num_requests, rng), 1),
        "num_output_tokens": np.maximum(output_tokens.sample(num_requests, rng), 1),
    }
    return Trace.from_columns(columns, source="synthetic")


@dataclass(frozen=True)
class ChatSessions:
    """Multi-turn chat sessions sharing one system prompt (see the module docstring)."""

    num_sessions: int
    session_arrivals: ArrivalProcess
    turns: LengthSampler
    user_tokens: LengthSampler
    output_tokens: LengthSampler
    think_time: FixedThinkTime | ExponentialThinkTime
    system_prompt_tokens: int = 0
    hash_block_size_tokens: int = 16
    max_context_tokens: int | None = None
    """Stop a session before a turn whose prompt + output would exceed this (turn 1 stays)."""


@dataclass(frozen=True)
class _Turns:
    """Flat per-turn arrays of all sessions, in session order then turn order."""

    session: np.ndarray
    arrival_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray


def _draw_turns(spec: ChatSessions, rng: np.random.Generator) -> _Turns:
    """Draw order: session starts, turns per session, user, output, think-time draws."""
    REQUESTS.check(spec.num_sessions, "num_sessions", "synthetic sessions")
    starts_s = arrival_times_s(spec.session_arrivals, spec.num_sessions, rng)
    num_turns = np.maximum(spec.turns.sample(spec.num_sessions, rng), 1)
    TURNS.check(int(num_turns.max()), "a session's number of turns", "synthetic sessions")
    total = int(num_turns.sum())
    REQUESTS.check(total, "the number of turns of all sessions (requests)", "synthetic sessions")
    user = np.maximum(spec.user_tokens.sample(total, rng), 1)
    output = np.maximum(spec.output_tokens.sample(total, rng), 1)
    think_s = spec.think_time.sample(total, rng)
    session = np.repeat(np.arange(spec.num_sessions), num_turns)
    first = np.concatenate([[0], np.cumsum(num_turns)[:-1]])
    is_first = np.zeros(total, bool)
    is_first[first] = True
    # Within a session: arrival_k = start + sum of earlier think times; the history before
    # turn k is S + sum over earlier turns of (user + output).
    arrival_s = starts_s[session] + _exclusive_cumsum(think_s, first, num_turns)
    history = _exclusive_cumsum(user + output, first, num_turns)
    prompt = spec.system_prompt_tokens + history + user
    keep = np.ones(total, bool)
    if spec.max_context_tokens is not None:
        keep = _keep_until_first_overflow(prompt + output, spec.max_context_tokens, first, is_first)
    turns = _Turns(session[keep], arrival_s[keep], prompt[keep], output[keep])
    _check_sizes(turns, spec)
    return turns


def _check_sizes(turns: _Turns, spec: ChatSessions) -> None:
    """Before any per-token array is built: each turn within the token limit, and all
    prefix hash ids together within theirs (a session's prompt grows with every turn)."""
    where = "synthetic sessions"
    if len(turns.prompt):
        longest = int((turns.prompt + turns.output).max())
        if longest > REQUEST_TOKENS.value():
            raise InputError(
                f"{where}: a turn's prompt (the session's history) plus output "
                f"{REQUEST_TOKENS.message('', longest)}; or set sessions.max_context_tokens, "
                "or fewer turns"
            )
    ids = int(((turns.prompt + turns.output) // spec.hash_block_size_tokens).sum())
    if ids > HASH_IDS.value():
        raise InputError(
            f"{where}: the prefix hash ids of all turns ({spec.hash_block_size_tokens} tokens "
            f"per block) {HASH_IDS.message('', ids)}; or set a larger "
            "sessions.hash_block_size_tokens, sessions.max_context_tokens or fewer turns"
        )


def _exclusive_cumsum(values: np.ndarray, first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-group sum of the values before each element (groups are contiguous runs)."""
    inclusive = np.cumsum(values)
    before_group = np.repeat(inclusive[first] - values[first], counts)
    return inclusive - values - before_group


def _keep_until_first_overflow(
    total_tokens: np.ndarray, limit: int, first: np.ndarray, is_first: np.ndarray
) -> np.ndarray:
    """Keep each session's turns up to (excluding) its first one over `limit`; turn 1 stays."""
    over = (total_tokens > limit) & ~is_first
    counts = np.diff(np.append(first, len(total_tokens)))
    seen_over = _exclusive_cumsum(over.astype(np.int64), first, counts) + over
    return seen_over == 0


def _session_hash_ids(turns: _Turns, spec: ChatSessions, order: np.ndarray) -> pa.ListArray:
    """Rows in `order`: the shared system-prompt ids 0..S-1, then the session's own ids
    (numbered session by session in ascending session id), cut to the row's full blocks."""
    block = spec.hash_block_size_tokens
    num_shared = spec.system_prompt_tokens // block
    num_blocks = (turns.prompt + turns.output) // block
    sessions, inverse = np.unique(turns.session, return_inverse=True)
    most = np.zeros(len(sessions), np.int64)
    np.maximum.at(most, inverse, num_blocks)  # a session's last turn has the most blocks
    own = np.maximum(most - num_shared, 0)
    base = num_shared + np.cumsum(own) - own
    n = num_blocks[order]
    shared = np.minimum(n, num_shared)
    starts = np.stack([np.zeros(len(n), np.int64), base[inverse[order]]], axis=1).ravel()
    lengths = np.stack([shared, n - shared], axis=1).ravel()
    return hash_ids_from_runs(starts, lengths, n)


def generate_sessions(spec: ChatSessions, rng: np.random.Generator) -> Trace:
    """Multi-turn sessions; rows sorted by (arrival, session, turn); ids 0..n-1 in that order."""
    if spec.num_sessions < 1:
        raise InputError(f"num_sessions is {spec.num_sessions}; must be >= 1")
    turns = _draw_turns(spec, rng)
    order = np.lexsort((np.arange(len(turns.session)), turns.session, turns.arrival_s))
    columns = {
        "arrival_s": turns.arrival_s[order],
        "num_prompt_tokens": turns.prompt[order],
        "num_output_tokens": turns.output[order],
        "prefix_hash_ids": _session_hash_ids(turns, spec, order),
        "session_id": turns.session[order],
    }
    return Trace.from_columns(
        columns, hash_block_size_tokens=spec.hash_block_size_tokens, source="synthetic-sessions"
    )
