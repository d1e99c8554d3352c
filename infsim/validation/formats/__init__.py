"""Benchmark-result parsers: a registry of `BenchFormat`s and auto-detection.

A format is `BenchFormat(name, read, sniff, description)`: `read(path, run_index)` returns
the `MeasuredRun` of one benchmark run (files that append several runs — SGLang JSONL,
GuideLLM reports, vLLM `--append-result` — need `run_index` when they hold more than one);
`sniff(path, head)` says whether the file (first 8 KiB as text) looks like this format.
One module per format registers itself on import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infsim.errors import InputError, shown
from infsim.registry import Registry
from infsim.textio import check_depth, load_json, read_text
from infsim.validation.measured import MeasuredRun

SNIFF_BYTES = 8192


@dataclass(frozen=True)
class BenchFormat:
    name: str
    read: Callable[[Path, int | None], MeasuredRun]
    sniff: Callable[[Path, str], bool]
    description: str


bench_formats: Registry[BenchFormat] = Registry("benchmark format")


def register(fmt: BenchFormat) -> BenchFormat:
    return bench_formats.register(fmt.name)(fmt)


def read_json(path: Path) -> Any:
    """The whole file as JSON (Python's parser: accepts the bare `Infinity` SGLang writes);
    a file that is not UTF-8, nested too deeply or holding a huge integer is an
    `InputError` naming the file (`infsim.textio`)."""
    return load_json(read_text(path, "benchmark result file"), str(path))


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; errors name the line."""
    return [row for _, row in read_numbered_json_lines(path)]


def read_numbered_json_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) of every non-blank line; errors name the line."""
    rows = [
        (number, parse_json_object(line, f"{path}: line {number}"))
        for number, line in text_lines(read_text(path, "benchmark result file"))
    ]
    if not rows:
        raise InputError(f"{path}: the file is empty")
    return rows


def text_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) of every non-blank line; line ends as Python's text
    mode reads them (\n, \r\n, \r; JSON text holds no raw line breaks)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]


def parse_json_object(line: str, where: str) -> dict[str, Any]:
    """One JSON Lines record: a JSON object, bounded like `infsim.textio.load_json`."""
    check_depth(line, where)
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply to read") from None
    except ValueError as exc:  # an integer beyond Python's digit limit
        text = str(exc) if len(str(exc)) <= 200 else str(exc)[:199] + "…"
        raise InputError(f"{where}: unreadable value: {text}") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object, got {shown(value)}")
    return value


def pick_run(runs: list[Any], run_index: int | None, path: Path, describe: Callable) -> Any:
    """The one run of a multi-run file: the only one, or `run_index` (0-based)."""
    if run_index is None:
        if len(runs) == 1:
            return runs[0]
        listing = "; ".join(f"{i}: {describe(run)}" for i, run in enumerate(runs))
        raise InputError(
            f"{path}: the file holds {len(runs)} benchmark runs; choose one with --run N "
            f"(run_index=N), 0-based: {listing}"
        )
    if not 0 <= run_index < len(runs):
        raise InputError(
            f"{path}: run {run_index} does not exist; the file holds "
            f"{len(runs)} run(s), numbered from 0"
        )
    return runs[run_index]


def detect_format(path: Path) -> str:
    """The one registered format whose `sniff` accepts `path`; `InputError` otherwise."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    if not head.strip():
        raise InputError(f"{path}: the file is empty")
    names = bench_formats.names()
    matches = [name for name in names if bench_formats.get(name).sniff(path, head)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = "; ".join(f"{n}: {bench_formats.get(n).description}" for n in names)
        raise InputError(
            f"{path}: cannot tell which benchmark wrote this file; give --format. "
            f"Known formats: {known}"
        )
    raise InputError(f"{path}: looks like several formats ({', '.join(matches)}); give --format")


def load_measured(path: str | Path, fmt: str = "auto", run_index: int | None = None) -> MeasuredRun:
    """Parse a benchmark result file into a `MeasuredRun` (seconds, tokens)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: benchmark result file not found")
    name = detect_format(path) if fmt == "auto" else fmt
    return bench_formats.get(name).read(path, run_index)


def format_names() -> list[str]:
    return bench_formats.names()


from infsim.validation.formats import (  # noqa: E402  (plug-ins register themselves)
    aiperf,
    guidellm,
    llmperf,
    sglang,
    vllm,
    vllm_inprocess,
)

__all__ = [
    "BenchFormat",
    "aiperf",
    "detect_format",
    "format_names",
    "guidellm",
    "llmperf",
    "load_measured",
    "sglang",
    "vllm",
    "vllm_inprocess",
]
