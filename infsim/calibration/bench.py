"""Checks on the live benchmarks that calibration fits from."""

from __future__ import annotations

from pathlib import Path

from infsim.errors import InputError
from infsim.validation.measured import MeasuredRun


def check_one_in_flight(measured: MeasuredRun, path: Path, why: str) -> None:
    """`InputError` (saying `why` the fit needs it) unless the benchmark's client kept one
    request in flight (vllm bench serve --max-concurrency 1)."""
    if measured.max_concurrency != 1:
        raise InputError(
            f"{path}: the client kept {measured.max_concurrency or 'unlimited'} requests "
            f"in flight; {why}"
        )
