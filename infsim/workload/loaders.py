"""`load_trace`: any supported trace file → canonical `Trace`.

Formats (see traces/SCHEMA.md): azure, burstgpt, vidur, mooncake, llmservingsim,
vllm-bench, infsim, and csv (any headed CSV through a column mapping). `format="auto"`
asks each format's `sniff` (extension plus header / first JSON object) and requires
exactly one to answer yes; with a column mapping it means csv.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from infsim.errors import InputError
from infsim.workload import formats_csv, formats_json  # noqa: F401  (register the formats)
from infsim.workload.columns import shown
from infsim.workload.formats import LoadOptions, read_head, trace_formats
from infsim.workload.formats_csv import TIME_UNITS_S
from infsim.workload.trace import Trace

SNIFF_BYTES = 4096


def format_names() -> list[str]:
    """Names accepted by `load_trace(format=...)`, besides "auto"."""
    return trace_formats.names()


def detect_format(path: Path) -> str:
    """The one registered format whose `sniff` accepts `path`; `InputError` otherwise."""
    head = read_head(path, SNIFF_BYTES).decode("utf-8", errors="replace")
    if not head.strip() and path.suffix.lower() != ".parquet":
        raise InputError(f"{path}: the file is empty")
    matches = [name for name in trace_formats.names() if _sniff(name, path, head)]
    if len(matches) == 1:
        return matches[0]
    known = "; ".join(f"{n}: {trace_formats.get(n).description}" for n in format_names())
    if not matches:
        raise InputError(
            f"{path}: cannot tell the trace format from the extension and first line; "
            f"give format= explicitly. Known formats: {known}"
        )
    raise InputError(f"{path}: looks like several formats ({', '.join(matches)}); give format=")


def _sniff(name: str, path: Path, head: str) -> bool:
    """Whether format `name` claims the file; a file it cannot even sniff is not its own."""
    try:
        return bool(trace_formats.get(name).sniff(path, head))
    except InputError:
        return False


def load_trace(
    path: str | Path,
    format: str = "auto",
    *,
    hash_block_size_tokens: int | None = None,
    drop_zero_output: bool = False,
    drop_failed: bool = False,
    columns: Mapping[str, str] | None = None,
    time_unit: str = "s",
) -> Trace:
    """Read a trace file into the canonical table.

    `hash_block_size_tokens` overrides the format's block size (Mooncake 512,
    LLMServingSim 16, infsim CSV: must be given if it has hash ids). `drop_zero_output`
    and `drop_failed` opt into dropping failed requests; the count lands in `Trace.notes`.
    Unsorted arrivals are never re-sorted (except vllm-bench, whose arrays are not in start
    order by construction): the error names the first offending row.
    """
    path = Path(path)
    try:
        if "\0" in str(path):
            raise ValueError("it holds a NUL byte")
        if not path.exists():
            raise InputError(f"{path}: trace file not found")
        if not path.is_file():
            raise InputError(f"{path}: not a file")
    except (OSError, ValueError) as err:  # a name too long, a NUL byte in it
        raise InputError(f"{shown(str(path))}: not a usable file name ({err})") from None
    if columns and format not in ("auto", "csv"):
        raise InputError(
            f"{path}: a column mapping is for format csv; format {format!r} knows its columns"
        )
    if format == "auto" and columns:
        format = "csv"
    name = detect_format(path) if format == "auto" else format
    fmt = trace_formats.get(name)
    if time_unit not in TIME_UNITS_S:
        raise InputError(f"{path}: time unit {time_unit!r}; allowed: {', '.join(TIME_UNITS_S)}")
    options = LoadOptions(
        hash_block_size_tokens=hash_block_size_tokens,
        drop_zero_output=drop_zero_output,
        drop_failed=drop_failed,
        columns=tuple((columns or {}).items()),
        time_unit=time_unit,
    )
    return fmt.read(path, options)
