"""What the fuzz modules share: one example may not hang, nor leak a numpy warning."""

from __future__ import annotations

import contextlib
import signal
import warnings
from collections.abc import Iterator
from typing import Any


class HangError(Exception):
    """An example ran past its time bound."""


@contextlib.contextmanager
def bounded(seconds: int) -> Iterator[None]:
    """Fail the example (HangError) instead of hanging the test run; numpy warnings are
    errors."""

    def alarm(signum: int, frame: Any) -> None:
        raise HangError(f"one example ran over {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy warnings must not leak
            yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
