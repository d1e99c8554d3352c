"""Upper bounds on what a scenario or a workload may ask for, so that a typo cannot ask for
a terabyte.

Each bound is far above any real deployment, trace or study (a run at the bound would take
hours or more memory than a large machine has). Two kinds:

- The scenario's bounds (`DEFAULTS`, read with `limit(name)`) are part of the scenario
  schema's field ranges, where the error names the field and the bound. They are fixed when
  infsim is imported; an unreadable override is said on stderr and the built-in bound
  applies.
- The workload's bounds (`Limit` objects: `REQUESTS`, `TRACE_ROWS`, …) are checked by the
  `workload:` section's fields, by the trace readers before they allocate (a Parquet file's
  row and id counts from its footer, a CSV's line count) and by the generators before they
  build per-request arrays; read when the check runs, so an unreadable override is an
  `InputError`. See traces/SCHEMA.md, "Limits".

Either is raised for one process with an environment variable `INFSIM_MAX_<NAME>` (e.g.
`INFSIM_MAX_REPLICAS=50000`, `INFSIM_MAX_REQUESTS=50000000`) when the machine allows.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, model_validator

from infsim.errors import InputError, number

DEFAULTS: dict[str, int | float] = {
    "replicas": 10_000,  # replicas of a deployment or a pool (each is simulated)
    "parallel": 1_024,  # tensor / pipeline / expert parallel ranks, GPUs per node
    "seqs": 1_000_000,  # max_num_seqs
    "tokens": 100_000_000,  # token counts: batch budget, context length, thresholds
    "blocks": 1_000_000_000,  # KV blocks
    "bytes": 2**50,  # memory sizes (1 PiB)
    "seconds": 1e9,  # durations and times (~32 years)
    "rate": 1e9,  # rates and targets
    "seed": 2**63 - 1,
}


def _read(name: str, default: int | float) -> int | float:
    """The bound after an `INFSIM_MAX_<NAME>` override. Read at import (the schema's field
    bounds are fixed then), so an unreadable override cannot be an InputError here: it is
    said on stderr and the built-in bound applies."""
    variable = f"INFSIM_MAX_{name.upper()}"
    text = os.environ.get(variable)
    if text is None or not text.strip():
        return default
    try:
        value = type(default)(float(text))
    except (ValueError, OverflowError):
        value = 0
    if not value > 0:
        sys.stderr.write(f"infsim: warning: {variable}={text[:40]!r} is not a positive number; "
                         f"the built-in bound {default:g} applies\n")  # fmt: skip
        return default
    return value


LIMITS = {name: _read(name, value) for name, value in DEFAULTS.items()}


def limit(name: str) -> int | float:
    """The bound called `name` (see DEFAULTS), after any environment override."""
    return LIMITS[name]


class BoundedModel(BaseModel):
    """A scenario section whose numbers are all finite and within ±`limit("rate")` (1e9:
    a rate, a duration in seconds, a count or a price above it is a typo, not a plan).
    Fields with a bound of their own (`le=` / `lt=`) are checked against that instead."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="after")
    def _numbers_bounded(self) -> BoundedModel:
        bound = limit("rate")
        fields = type(self).model_fields
        for name, value in self:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or abs(value) <= bound or name not in fields:
                continue
            if not any(hasattr(m, "le") or hasattr(m, "lt") for m in fields[name].metadata):
                raise ValueError(
                    f"{name}: {_shown(value)} is beyond the largest accepted magnitude "
                    f"{bound:.6g} (raise it with INFSIM_MAX_RATE if you mean it)"
                )
        return self


def _shown(value: int | float) -> str:
    """A number as a message shows it (an integer of thousands of digits, by its size:
    Python refuses to print integers beyond 4,300 digits)."""
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    return str(value) if isinstance(value, int) else f"{value:.6g}"


# -- the workload's bounds -----------------------------------------------------------------
@dataclass(frozen=True)
class Limit:
    name: str
    default: int | float
    what: str
    """What one unit is, plural: "requests", "tokens in one request"."""
    why: str
    """What it costs, said when the bound is hit."""
    hard_max: int | None = None
    """A bound no override may pass (a format or library limit)."""

    @property
    def env(self) -> str:
        return f"INFSIM_MAX_{self.name.upper()}"

    def value(self) -> int | float:
        """The bound, after any `INFSIM_MAX_<NAME>` override (an unreadable one is an error)."""
        text = os.environ.get(self.env)
        if text is None or not text.strip():
            return self.default
        try:
            parsed = float(text)
        except ValueError:
            parsed = -1.0
        if isinstance(self.default, int):
            value = int(parsed) if math.isfinite(parsed) and parsed == int(parsed) else -1
        else:
            value = parsed if math.isfinite(parsed) else -1.0
        if value <= 0:
            kind = "a whole number" if isinstance(self.default, int) else "a finite number"
            raise InputError(
                f"environment variable {self.env} is {text[:40]!r}; expected {kind} > 0 "
                f"(the built-in bound is {number(self.default)} {self.what})"
            )
        if self.hard_max is not None and value > self.hard_max:
            raise InputError(
                f"environment variable {self.env} is {value:,}; at most {self.hard_max:,} "
                f"{self.what} can be held ({self.why})"
            )
        return value

    def schema(self) -> dict[str, int | float]:
        """JSON-schema keywords of the bound (the built-in value)."""
        return {"maximum": self.default}

    def hint(self) -> str:
        return f"set {self.env}=<n> to raise it if the machine allows ({self.why})"

    def message(self, subject: str, got: int | float) -> str:
        """`subject` is `got`; says the bound and how to raise it."""
        lead = f"{subject} is" if subject else "is"
        return (
            f"{lead} {number(got)}; at most {number(self.value())}{' ' if self.what else ''}"
            f"{self.what} are accepted; "
            f"{self.hint()}"
        )

    def check(self, got: int | float, subject: str, where: str = "") -> None:
        """`InputError` (prefixed by `where`, e.g. the file) when `got` is over the bound."""
        if got > self.value():
            raise InputError(f"{where}{': ' if where else ''}{self.message(subject, got)}")

    def validator(self, subject: str):
        """A pydantic after-validator: None passes, a number over the bound fails."""

        def _check(value: int | None) -> int | None:
            if value is not None and value > self.value():
                raise ValueError(self.message(subject, value))
            return value

        return _check


REQUESTS = Limit(
    "requests",
    10_000_000,
    "requests",
    "a simulated request holds about 2 KB while the run lasts",
)
"""Requests one workload may simulate (synthetic num_requests, session turns in all, a trace
after its window and cap)."""

TRACE_ROWS = Limit(
    "trace_rows",
    100_000_000,
    "rows",
    "a trace row holds about 60 bytes once read, more while parsed",
)
"""Rows one trace file may hold (a window or max_requests then cuts it down)."""

TRACE_BYTES = Limit(
    "trace_bytes",
    4 * 2**30,
    "bytes in one CSV or JSON trace file",
    "a text trace is held about three times over while it is parsed",
)
"""Size of one CSV, JSONL or JSON trace file, checked before it is read."""

REQUEST_TOKENS = Limit(
    "request_tokens",
    10_000_000,
    "tokens in one request",
    "the largest context of a model in the catalog is 163,840 tokens",
)
"""Prompt or output tokens of one request; also the largest block size and session prompt."""

TURNS = Limit(
    "turns",
    10_000,
    "turns per session",
    "each turn is a request, and its prompt holds the whole history before it",
)
"""Turns of one synthetic chat session."""

HASH_IDS = Limit(
    "hash_ids",
    100_000_000,
    "prefix hash ids in one trace",
    "each id takes 8 bytes in the trace and about 16 more while built",
    hard_max=2**31 - 1,
)
"""Prefix hash ids of all rows of one trace together (Arrow list offsets are 32-bit)."""

EXPORT_WORDS = Limit(
    "export_words",
    1_000_000_000,
    "prompt words",
    "`trace export --format vllm-custom` writes each prompt token as a word, ~6 bytes each",
)
"""Prompt words one vllm-custom export may write (all rows together)."""

SECONDS = Limit(
    "seconds",
    1e9,
    "seconds",
    "about 32 years; a larger time is a typo or a unit mistake",
)
"""Times and durations of the `workload:` section (window, think times)."""

RATE = Limit(
    "rate",
    1e9,
    "requests per second",
    "a rate above it is a typo or a unit mistake",
)
"""Arrival rates of the synthetic generators."""

SCALE = Limit(
    "scale",
    1e6,
    "",
    "a larger factor squeezes or stretches the trace beyond meaning",
)
"""time_scale and rate_scale."""

MAX_ARRIVAL_S = 1e10
"""Largest arrival time in a trace, in seconds from its start (~317 years); not raisable."""
