"""Errors that reach the user.

`InputError` is the only exception the CLI turns into a message: its text is one
paragraph that names the file, the dotted field path or the trace row, says what is
wrong and what is allowed. The CLI prints it and exits with code 2, never a traceback.
Anything else escaping is a bug in infsim.
"""

from __future__ import annotations

import reprlib
from typing import Any

SHOW_CHARS = 80
"""How much of a bad value a message quotes."""

_REPR = reprlib.Repr()  # containers: a bounded depth and length, whatever their size
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring = 3, 6, 6, SHOW_CHARS
_REPR.maxlong = _REPR.maxother = SHOW_CHARS


class InputError(Exception):
    """Bad user input (scenario, trace, CLI argument, profiler file)."""


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' when none is close.

    >>> did_you_mean("max_num_seq", ["max_num_seqs", "block_size"])
    " (did you mean 'max_num_seqs'?)"
    """
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown(value: Any, limit: int = SHOW_CHARS) -> str:
    """A bad value as every error message quotes it: its repr ('text', None, nan), cut in
    the middle with its length when longer than `limit`; an integer too long to print
    (Python refuses beyond 4,300 digits) by its number of digits; a container to a bounded
    depth and length, so a 200 KB value never reaches the terminal."""
    flat = isinstance(value, str | bytes | int | float)
    try:
        text = repr(value) if flat else _REPR.repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    except RecursionError:
        return f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    if flat:
        return f"{text[: limit // 2]}…{text[-limit // 2 :]} ({len(text):,} characters)"
    return text[: limit - 1] + "…"


def number(value: int | float) -> str:
    """A number as limit messages show it: thousands separated, whole floats as integers,
    an integer too long to print by its number of digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    if isinstance(value, int) and abs(value) >= 10**40:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    text = f"{value:,}" if isinstance(value, int) else repr(float(value))
    return text if len(text) <= 40 else text[:20] + "…" + text[-12:]
