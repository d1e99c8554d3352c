"""Strict reading of the JSON values of a benchmark file (`infsim.validation.formats`).

Every value a parser takes from a file goes through one of these functions: a wrong type,
a null where a value is needed, a non-finite or out-of-range number is an `InputError`
that names the file and record (`where`, e.g. "result.json: run 0" or "x.jsonl: line 7"),
the field (with its index in an array, `ttfts[3]`), the value (shortened) and what is
allowed. Nothing is coerced: the string "12" is not 12, `true` is not 1, 12.5 tokens are
not 12, and a null is never read as 0.

Bounds keep later arithmetic finite and exact (no numpy overflow or cast warnings):

    tokens per request        0 … MAX_TOKENS (10^8, as the scenario's token bound)
    latencies and durations   0 … MAX_SECONDS (10^9 s, ~32 years)
    absolute timestamps       |t| ≤ MAX_CLOCK_S (10^12 s: any epoch or monotonic clock)
    request counts            0 … MAX_COUNT (10^12)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from infsim.errors import InputError, shown
from infsim.limits import limit

MAX_TOKENS = int(limit("tokens"))  # 1e8, INFSIM_MAX_TOKENS (infsim/limits.py)
MAX_SECONDS = float(limit("seconds"))  # 1e9, INFSIM_MAX_SECONDS
MAX_CLOCK_S = 1e12
MAX_COUNT = 10**12

SECONDS = f"a number of seconds, finite, 0 to {MAX_SECONDS:.0e}"
CLOCK = f"a timestamp in seconds, finite, at most {MAX_CLOCK_S:.0e} in magnitude"
TOKENS = f"a token count, an integer 0 to {MAX_TOKENS:,}"
COUNT = f"a count, an integer 0 to {MAX_COUNT:.0e}"


def fail(where: str, field: str, value: Any, expected: str) -> InputError:
    return InputError(f"{where}: {field} is {shown(value)}; expected {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def mapping(value: Any, where: str, field: str, *, optional: bool = False) -> dict[str, Any]:
    """A JSON object; {} for null/absent only where `optional`."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise fail(where, field, value, "a JSON object")
    return value


def items(
    value: Any, where: str, field: str, *, length: int | None = None, optional: bool = False
) -> list[Any] | None:
    """A JSON array (of `length` items where given); None for null only where `optional`."""
    if value is None and optional:
        return None
    if not isinstance(value, list):
        raise fail(where, field, value, "a JSON array" if length is None else
                   f"a JSON array of {length} items (one per request)")  # fmt: skip
    if length is not None and len(value) != length:
        raise InputError(
            f"{where}: {field} holds {len(value)} items but there are {length} requests; "
            "every per-request array must have one item per request"
        )
    return value


def text(value: Any, where: str, field: str) -> str | None:
    """An optional string: None for null/absent or empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(where, field, value, "a string (or null)")
    return value or None


def number(
    value: Any,
    where: str,
    field: str,
    *,
    lo: float = -math.inf,
    hi: float = math.inf,
    expected: str = "a finite number",
    optional: bool = False,
) -> float | None:
    """A finite number in [lo, hi]; None for null/absent only where `optional`."""
    if value is None and optional:
        return None
    if not _is_number(value):
        raise fail(where, field, value, expected)
    try:
        result = float(value)
    except OverflowError:
        raise fail(where, field, value, expected) from None
    if not (math.isfinite(result) and lo <= result <= hi):
        raise fail(where, field, value, expected)
    return result


def seconds(
    value: Any, where: str, field: str, *, scale: float = 1.0, optional: bool = False
) -> float | None:
    """A duration in the file's unit (`scale` seconds each) → seconds in [0, MAX_SECONDS]."""
    unit = "" if scale == 1.0 else f" (in units of {scale:g} s)"
    result = number(value, where, field, expected=SECONDS + unit, optional=optional)
    if result is None:
        return None
    if not 0.0 <= result * scale <= MAX_SECONDS:
        raise fail(where, field, value, SECONDS + unit)
    return result * scale


def count(
    value: Any, where: str, field: str, *, hi: int = MAX_COUNT, optional: bool = False
) -> int | None:
    """A non-negative integer ≤ hi (an integral float such as 12.0 is accepted)."""
    expected = TOKENS if hi == MAX_TOKENS else f"an integer 0 to {hi:,}"
    result = number(value, where, field, lo=0, hi=hi, expected=expected, optional=optional)
    if result is None:
        return None
    if result != int(result):
        raise fail(where, field, value, expected)
    return int(result)


def tokens(value: Any, where: str, field: str, *, optional: bool = False) -> int | None:
    return count(value, where, field, hi=MAX_TOKENS, optional=optional)


def number_array(  # noqa: PLR0913  (one keyword per check)
    value: Any,
    where: str,
    field: str,
    *,
    length: int | None = None,
    lo: float = 0.0,
    hi: float = MAX_SECONDS,
    scale: float = 1.0,
    expected: str = SECONDS,
    integral: bool = False,
) -> np.ndarray:
    """A JSON array of numbers → float64 array (× `scale`), every item finite, integral
    where asked, and in [lo, hi] after scaling; the error names the first bad index."""
    seq = items(value, where, field, length=length)
    assert seq is not None
    array = _as_floats(seq)
    if array is None:
        index = next(i for i, v in enumerate(seq) if not _fits_float(v))
        raise fail(where, f"{field}[{index}]", seq[index], expected)
    with np.errstate(over="ignore", invalid="ignore"):
        array = array * scale if scale != 1.0 else array
        bad = ~np.isfinite(array) | (array < lo) | (array > hi)
        if integral:
            bad |= array != np.floor(array)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        extra = f" ({more} more such items)" if more else ""
        raise InputError(
            f"{where}: {field}[{index}] is {shown(seq[index])}; expected {expected}{extra}"
        )
    return array


def token_array(value: Any, where: str, field: str, *, length: int | None = None) -> np.ndarray:
    """A JSON array of token counts → int64 array."""
    array = number_array(value, where, field, length=length, lo=0, hi=MAX_TOKENS,
                         expected=TOKENS, integral=True)  # fmt: skip
    return array.astype(np.int64)


def clock_array(value: Any, where: str, field: str, length: int | None = None) -> np.ndarray:
    return number_array(value, where, field, length=length, lo=-MAX_CLOCK_S, hi=MAX_CLOCK_S,
                        expected=CLOCK)  # fmt: skip


def _fits_float(value: Any) -> bool:
    if not _is_number(value):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _as_floats(seq: Sequence[Any]) -> np.ndarray | None:
    """float64 array of a list of JSON numbers, or None when an item is not a number (a
    string, bool, null, array, object) or too large for a float."""
    if not set(map(type, seq)) <= {int, float}:
        return None
    try:
        return np.asarray(seq, dtype=np.float64).reshape(len(seq))
    except (OverflowError, ValueError, TypeError):
        return None
