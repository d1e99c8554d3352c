"""Upper bounds on what a workload may ask for, so that a typo cannot ask for a terabyte.

Each bound is far above any real trace or study, and is part of the schema: the
`workload:` section's fields check it (the error names the field, the bound and how to raise
it), the trace readers check it before they allocate (a Parquet file's row and id counts
from its footer, a CSV's line count), and the generators check what they drew before they
build per-request arrays. Raise a bound for one process with the environment variable
`INFSIM_MAX_<NAME>` (e.g. `INFSIM_MAX_REQUESTS=50000000`) when the machine has the memory;
it is read when the check runs. See traces/SCHEMA.md, "Limits".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from infsim.errors import InputError


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
            number = float(text)
        except ValueError:
            number = -1.0
        if isinstance(self.default, int):
            value = int(number) if math.isfinite(number) and number == int(number) else -1
        else:
            value = number if math.isfinite(number) else -1.0
        if value <= 0:
            kind = "a whole number" if isinstance(self.default, int) else "a finite number"
            raise InputError(
                f"environment variable {self.env} is {text[:40]!r}; expected {kind} > 0 "
                f"(the built-in bound is {_num(self.default)} {self.what})"
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
            f"{lead} {_num(got)}; at most {_num(self.value())}{' ' if self.what else ''}"
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


def _num(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    if isinstance(value, int) and abs(value) >= 10**40:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    text = f"{value:,}" if isinstance(value, int) else repr(float(value))
    return text if len(text) <= 40 else text[:20] + "…" + text[-12:]


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
