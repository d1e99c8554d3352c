"""Upper bounds on what a scenario may ask for, so that a typo cannot ask for a terabyte.

Each bound is far above any real deployment or trace (a run at the bound would take hours
or more memory than a large machine has) and is checked by the scenario schema, where the
error names the field and the bound. A bound can be raised for one process with an
environment variable `INFSIM_MAX_<NAME>` (e.g. `INFSIM_MAX_REPLICAS=50000`) when the
machine allows; it is read when infsim is imported.
"""

from __future__ import annotations

import os
import sys

from pydantic import BaseModel, ConfigDict, model_validator

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
