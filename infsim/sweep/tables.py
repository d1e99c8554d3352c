"""A pandas table → a rich table for the console (numbers to 4 significant digits)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.table import Table


def cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) > 60:
        return value[:57] + "..."
    return str(value)


_SHORT = {
    "latency_s": "",
    "throughput.output_tokens_per_s": "out tok/s",
    "slo.attainment": "attain",
    "cost.usd_per_hour": "$/h",
    "cost.usd_per_million_output_tokens": "$/M out tok",
    "cost.usd_per_million_total_tokens": "$/M tok",
}


def header(column: str) -> str:
    """A short console header: `latency_s.ttft.p99` → `ttft.p99 s`, known costs as $."""
    if column in _SHORT:
        return _SHORT[column]
    if column.startswith("latency_s."):
        return column.removeprefix("latency_s.") + " s"
    return column


def render(table: pd.DataFrame) -> Table:
    out = Table(show_lines=False, header_style="bold")
    for col in table.columns:
        numeric = pd.api.types.is_numeric_dtype(table[col])
        out.add_column(header(str(col)), justify="right" if numeric else "left")
    for record in table.itertuples(index=False):
        out.add_row(*(cell(v) for v in record))
    return out
