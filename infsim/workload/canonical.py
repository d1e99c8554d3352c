"""Trace cells in their canonical text forms, parsed in numpy over Arrow's buffers.

A CSV trace's token counts are plain digits and an Azure trace's timestamps are
'2023-11-16 18:17:03.9799600'. Parsing those with Arrow's cast imports `pyarrow.compute`
(~40 ms, a tenth of a small run's process); these read the bytes directly instead. Each
takes only cells whose meaning is certain and returns None for anything else (a sign,
a space, a date like Feb 30, a leap second), so the caller's Arrow (or pandas) path keeps
the last word on every other cell and on every error message. Where they return values,
they are Arrow's (`tests/workload/test_canonical.py` compares them).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

MAX_DIGITS = 18
"""Up to 18 digits: below 2**63 whatever they are."""

_ZERO = ord("0")


def _cells(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(bytes, cell starts, cell lengths) of a string column without nulls, else None."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if values.type != pa.string() or values.null_count or not len(values):
        return None
    buffers = values.buffers()
    offsets = np.frombuffer(
        buffers[1], dtype="<i4", count=len(values) + 1, offset=values.offset * 4
    )
    if buffers[2] is None:
        return None
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    return data, offsets[:-1], np.diff(offsets)


def _digits(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int, *, pad: bool
) -> np.ndarray | None:
    """Each cell's first `lengths` bytes (at most `width`) as a decimal number, or None if
    one of them is not 0-9. With `pad`, a shorter cell reads as if followed by zeros up to
    `width` (a fraction's digits); without, it is its own number."""
    out = np.zeros(len(starts), dtype=np.int64)
    for k in range(width):  # digit k of every cell that long
        has = lengths > k
        digit = np.zeros(len(starts), dtype=np.int64)
        digit[has] = data[starts[has] + k].astype(np.int64) - _ZERO
        if ((digit < 0) | (digit > 9)).any():
            return None
        out = out * 10 + digit if pad else np.where(has, out * 10 + digit, out)
    return out


def digit_cells(values: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """int64 values of a string column whose every cell is 1 to 18 ASCII digits (what
    `pc.cast(values, pa.int64())` gives them), else None."""
    cells = _cells(values)
    if cells is None:
        return None
    data, starts, lengths = cells
    if lengths.min() < 1 or lengths.max() > MAX_DIGITS:
        return None
    return _digits(data, starts, lengths, int(lengths.max()), pad=False)


_DATE_TIME = 19
"""'YYYY-MM-DD HH:MM:SS'; a fraction adds '.' and 1 to 9 digits."""


def plain_stamps_ns(values: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Nanoseconds since the epoch of a string column whose every cell is 'YYYY-MM-DD
    HH:MM:SS' (or with 'T'), optionally '.' and 1 to 9 digits, a year 1900 to 2199 and a
    valid date and time of day (seconds 0-59): what `pc.cast(values, pa.timestamp("ns"))`
    gives them. Else None."""
    cells = _cells(values)
    if cells is None:
        return None
    data, starts, lengths = cells
    fraction = lengths - _DATE_TIME - 1  # digits after the '.'
    if not ((lengths == _DATE_TIME) | ((fraction >= 1) & (fraction <= 9))).all():
        return None
    separators = {4: b"-", 7: b"-", 13: b":", 16: b":"}
    for at, char in separators.items():
        if (data[starts + at] != ord(char)).any():
            return None
    middle = data[starts + 10]
    if ((middle != ord(" ")) & (middle != ord("T"))).any():
        return None
    fields = [_digits(data, starts + at, lengths - at, width, pad=True) for at, width in
              ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2))]  # fmt: skip
    if any(f is None for f in fields):
        return None
    year, month, day, hour, minute, second = fields  # type: ignore[misc]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    valid_month = (month >= 1) & (month <= 12)
    if not valid_month.all():
        return None
    last_day = month_days[month - 1] + (leap & (month == 2))
    if not (
        ((year >= 1900) & (year <= 2199)).all()
        and ((day >= 1) & (day <= last_day)).all()
        and (hour <= 23).all()
        and (minute <= 59).all()
        and (second <= 59).all()
    ):
        return None
    if (data[starts[fraction > 0] + _DATE_TIME] != ord(".")).any():
        return None
    nanos = _digits(data, starts + _DATE_TIME + 1, np.maximum(fraction, 0), 9, pad=True)
    if nanos is None:
        return None
    days = _days_from_civil(year, month, day)
    return ((days * 24 + hour) * 60 + minute) * 60 * 1_000_000_000 + second * 1_000_000_000 + nanos


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
