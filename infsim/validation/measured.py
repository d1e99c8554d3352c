"""What a live benchmark measured, normalised: `MeasuredRun` (per-request rows + stated stats).

Every benchmark client writes its own units and definitions (FORMATS.md §1); the parsers in
`infsim.validation.formats` turn each file into this one shape, in seconds and tokens:

    MeasuredRun
      requests: MeasuredRequests | None   per-request rows, where the file keeps them
        start_s            request send time on the client's clock (any epoch) or None
        num_input_tokens   prompt tokens
        num_output_tokens  generated tokens
        ttft_s, e2e_s      NaN where the file does not say
        itl_s              list of per-request inter-chunk gaps, or None
        failed             True for errored / cancelled / incomplete requests
      stats: {"<metric>_<stat>": value}   what the file states (aggregates), same key names
                                          as the comparison: ttft_mean, tpot_p99, ...,
                                          output_tokens_per_s

Definitions follow vLLM's `bench serve`: TPOT = (e2e − ttft) / (output − 1) per request
(requests with more than one output token), ITL = every inter-chunk gap pooled over
requests, percentiles are numpy 'linear'. Values for failed rows are meaningless (0 / NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infsim.errors import InputError, shown
from infsim.validation import fields

METRICS = ("ttft", "tpot", "itl", "e2e")
STATS = ("mean", "p50", "p90", "p99")
THROUGHPUT_KEY = "output_tokens_per_s"
"""Throughput has no stat: its key is just `output_tokens_per_s` (tokens per second)."""

STAT_KEYS = (*(f"{m}_{s}" for m in METRICS for s in STATS), THROUGHPUT_KEY)
"""Every comparison key, in table order."""

_UNIT_SECONDS = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}


def seconds_per_unit(unit: Any, where: str) -> float:
    """Seconds in one `unit` ("ms", "ns", "sec", ...); `InputError` for an unknown unit."""
    known = _UNIT_SECONDS.get(unit.strip().lower()) if isinstance(unit, str) else None
    if known is None:
        raise InputError(
            f"{where}: unknown time unit {shown(unit)}; expected one of "
            f"{', '.join(sorted(_UNIT_SECONDS))}"
        )
    return known


@dataclass(frozen=True)
class MeasuredRequests:
    """Index-aligned per-request arrays (see the module docstring)."""

    num_input_tokens: np.ndarray
    num_output_tokens: np.ndarray
    ttft_s: np.ndarray
    e2e_s: np.ndarray
    failed: np.ndarray
    start_s: np.ndarray | None = None
    itl_s: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        n = len(self.failed)
        arrays = (self.num_input_tokens, self.num_output_tokens, self.ttft_s, self.e2e_s)
        lengths = {len(a) for a in arrays} | {n}
        if self.start_s is not None:
            lengths.add(len(self.start_s))
        if self.itl_s is not None:
            lengths.add(len(self.itl_s))
        if len(lengths) != 1:
            raise InputError(f"per-request arrays differ in length ({sorted(lengths)})")
        # The parsers convert and check every value; these are the shapes they must give.
        kinds = [(self.num_input_tokens, "i"), (self.num_output_tokens, "i"), (self.ttft_s, "f")]
        kinds += [(self.e2e_s, "f"), (self.failed, "b"), (self.start_s, "f")]
        kinds += [(gaps, "f") for gaps in self.itl_s or ()]
        for array, kind in kinds:
            if array is not None and (array.ndim != 1 or array.dtype.kind != kind):
                raise TypeError(f"per-request array of dtype {array.dtype}, ndim {array.ndim}")

    @property
    def num_requests(self) -> int:
        return len(self.failed)

    def tpot_s(self) -> np.ndarray:
        """Time per output token after the first, (E2E − TTFT) / (outputs − 1), of the rows
        with more than one output token, in row order."""
        many = self.num_output_tokens > 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.e2e_s[many] - self.ttft_s[many]) / (self.num_output_tokens[many] - 1)

    def take(self, index: np.ndarray) -> MeasuredRequests:
        """The rows at `index` (in that order)."""
        return MeasuredRequests(
            num_input_tokens=self.num_input_tokens[index],
            num_output_tokens=self.num_output_tokens[index],
            ttft_s=self.ttft_s[index],
            e2e_s=self.e2e_s[index],
            failed=self.failed[index],
            start_s=None if self.start_s is None else self.start_s[index],
            itl_s=None if self.itl_s is None else [self.itl_s[i] for i in index],
        )


@dataclass(frozen=True)
class MeasuredRun:
    """One benchmark run as infsim reads it; `stats` holds only what the file states."""

    format: str
    source: str
    model: str | None
    requests: MeasuredRequests | None
    stats: dict[str, float] = field(default_factory=dict)
    duration_s: float | None = None
    num_completed: int | None = None
    num_failed: int | None = None
    notes: tuple[str, ...] = ()
    replay_blocker: str | None = None
    """Why the run cannot be replayed even though it has rows (e.g. sampled rows)."""
    max_concurrency: int | None = None
    """The client's in-flight limit (closed loop), where the file states one."""
    request_rate_per_s: float | None = None
    """The client's target send rate: math.inf = all at once; None = not stated."""

    def __post_init__(self) -> None:
        """Backstop for every parser: the normalised values have the types and ranges the
        comparison relies on (each parser names the file's own field before this)."""
        where = self.source
        if self.model is not None and not isinstance(self.model, str):
            raise fields.fail(where, "the model name", self.model, "a string")
        for name in ("num_completed", "num_failed"):
            fields.count(getattr(self, name), where, name, optional=True)
        fields.seconds(self.duration_s, where, "the duration", optional=True)
        for key, value in self.stats.items():
            if key not in STAT_KEYS:
                raise InputError(f"{where}: unknown statistic {key!r}")
            if key == THROUGHPUT_KEY:
                fields.number(value, where, key, lo=0.0, expected="tokens per second ≥ 0")
            else:
                fields.seconds(value, where, key)
        client_concurrency(self.max_concurrency, where)
        if self.request_rate_per_s is not None:
            client_rate(self.request_rate_per_s, where)

    @property
    def replayable(self) -> bool:
        """Per-request start times and lengths of every request are known."""
        return (
            self.replay_blocker is None
            and self.requests is not None
            and self.requests.start_s is not None
        )

    def why_not_replayable(self) -> str:
        if self.replay_blocker is not None:
            return self.replay_blocker
        if self.requests is None:
            return "the file keeps no per-request rows (only aggregates)"
        return "the file has no per-request start times, so the arrival pattern is unknown"


MAX_CONCURRENCY = 10**9
"""Largest client in-flight limit accepted (far above any benchmark client)."""


def client_concurrency(value: Any, where: object) -> int | None:
    """A benchmark's `max_concurrency` (null = no limit); `InputError` unless a positive int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise InputError(
            f"{where}: max_concurrency is {shown(value)}; expected a positive integer "
            f"(at most {MAX_CONCURRENCY:,}) or null (no limit)"
        )
    return value


def client_rate(value: Any, where: object = "benchmark file") -> float | None:
    """A benchmark's `request_rate`: "inf"/Infinity → math.inf (all at once), a positive
    number as is, null → None (not stated); anything else is an `InputError`."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinity"):
        return math.inf
    if isinstance(value, float) and value == math.inf:
        return math.inf
    return fields.number(
        value, str(where), "request_rate", lo=math.ulp(0.0), hi=fields.MAX_COUNT,
        expected='a positive number of requests per second, "inf" or null',
    )  # fmt: skip


def stated_seconds(value: Any, where: str, field: str, scale: float = 1.0) -> float | None:
    """An aggregate the file states, in seconds: null or NaN = not stated (None); otherwise
    a finite number in [0, MAX_SECONDS] (× `scale`), else `InputError`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return fields.seconds(value, where, field, scale=scale)


def stated_rate(value: Any, where: str, field: str) -> float | None:
    """A stated throughput (tokens/s): null or NaN = not stated; else finite and ≥ 0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return fields.number(value, where, field, lo=0.0, hi=float(fields.MAX_COUNT),
                         expected="a finite number of tokens per second ≥ 0, or null")  # fmt: skip


def ms_aggregates(run: dict[str, Any], metrics: dict[str, str], where: str) -> dict[str, float]:
    """vLLM/SGLang-style aggregates: `<stat>_<metric>_ms` keys (→ seconds) plus
    `output_throughput` (tokens/s) when present."""
    stats = stats_from_keys(run, metrics, "{stat}_{metric}_ms", 1e-3, where)
    throughput = stated_rate(run.get("output_throughput"), where, "output_throughput")
    if throughput is not None:
        stats[THROUGHPUT_KEY] = throughput
    return stats


def stats_from_keys(
    data: dict[str, Any], metrics: dict[str, str], pattern: str, scale: float, where: str
) -> dict[str, float]:
    """Pick mean/p50/p90/p99 of each metric from flat keys built by `pattern`.

    `metrics` maps our metric name to the file's (`{"e2e": "e2el"}`); `pattern` is
    formatted with `stat` (mean, median or p50, p90, p99) and `metric`; values are
    multiplied by `scale` (1e-3 for `*_ms` keys). Absent, null or NaN keys are not stated
    and skipped; any other value must be a finite number of seconds ≥ 0 (`InputError`
    naming the key otherwise).
    """
    out: dict[str, float] = {}
    for ours, theirs in metrics.items():
        for stat in STATS:
            words = ("median", "p50") if stat == "p50" else (stat,)
            for word in words:
                key = pattern.format(stat=word, metric=theirs)
                value = stated_seconds(data.get(key), where, key, scale)
                if value is not None:
                    out[f"{ours}_{stat}"] = value
                    break
    return out


def describe_stats(values: np.ndarray) -> dict[str, float]:
    """mean/p50/p90/p99 of `values` with numpy's linear percentiles; {} when empty."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {}
    pct = np.percentile(values, [50.0, 90.0, 99.0])
    return {
        "mean": float(values.mean()),
        "p50": float(pct[0]),
        "p90": float(pct[1]),
        "p99": float(pct[2]),
    }
