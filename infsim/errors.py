"""Errors that reach the user.

`InputError` is the only exception the CLI turns into a message: its text is one
paragraph that names the file, the dotted field path or the trace row, says what is
wrong and what is allowed. The CLI prints it and exits with code 2, never a traceback.
Anything else escaping is a bug in infsim.
"""

from __future__ import annotations


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
