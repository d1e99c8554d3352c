"""The results table of a sweep directory: the manifest's points joined with the store,
filtered (`--where` expression), sorted (`--sort col[,-col]`) and exported (CSV)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infsim.errors import InputError, did_you_mean
from infsim.sweep.expr import Expression
from infsim.sweep.store import ResultStore, write_atomic

#: Columns shown by default after the overrides (those present in the table).
DEFAULT_METRICS = (
    "status",
    "latency_s.ttft.p99",
    "latency_s.tpot.p99",
    "latency_s.e2e.p99",
    "throughput.output_tokens_per_s",
    "slo.attainment",
    "cost.usd_per_hour",
    "cost.usd_per_million_output_tokens",
    "wall_s",
)


def results_table(store: ResultStore, *, include_all: bool = False) -> pd.DataFrame:
    """One row per point of the manifest (in point order) that has a stored result; with
    `include_all`, every stored point of the directory instead."""
    manifest = store.manifest()
    if include_all:
        return store.rows()
    points = manifest.get("points", [])
    # An optimizer may propose one configuration twice: one stored row per key.
    stored = store.rows(list(dict.fromkeys(p["key"] for p in points)))
    if stored.empty:
        return stored
    by_key = stored.drop_duplicates("key").set_index("key")
    rows = []
    for p in points:
        if p["key"] in by_key.index:
            metrics = by_key.loc[p["key"]].to_dict()
            rows.append(
                {
                    "point": p["index"],
                    **p["overrides"],
                    "key": p["key"],
                    **_drop(metrics, p["overrides"]),
                }
            )
    return pd.DataFrame(rows)


def _drop(metrics: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in overrides and k != "overrides_json"}


def filter_rows(table: pd.DataFrame, where: str) -> pd.DataFrame:
    expr = Expression(where, "--where")
    keep = []
    for record in table.to_dict("records"):
        names = {str(k): _plain(v) for k, v in record.items()}
        try:
            keep.append(bool(expr.evaluate(names)))
        except InputError:
            if any(n not in names for n in expr.names):
                raise
            if not any(names[n] is None for n in expr.names):
                raise  # not a missing value: the expression itself (a bound, a type error)
            keep.append(False)  # None compared with a number (failed point): no match
    return table[keep] if len(table) else table


def _plain(value: Any) -> Any:
    """A table cell as the expression sees it: numpy scalars as Python ones, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def sort_rows(table: pd.DataFrame, sort: str) -> pd.DataFrame:
    """`sort` = comma-separated columns, `-` before a name for descending. A column mixing
    numbers and text sorts numbers first; missing values go last."""
    cols, ascending = [], []
    for part in (p.strip() for p in sort.split(",") if p.strip()):
        name = part.lstrip("-+")
        check_column(table, name, "--sort")
        cols.append(name)
        ascending.append(not part.startswith("-"))
    if not cols:
        raise InputError(f"--sort {sort!r}: no column named; e.g. --sort cost.usd_per_hour,-x")
    return table.sort_values(
        cols, ascending=ascending, na_position="last", kind="stable", key=_sort_key
    )


def _sort_key(column: pd.Series) -> pd.Series:
    if column.dtype != object:
        return column
    return column.map(_rank)


def _rank(value: Any) -> Any:
    value = _plain(value)
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        try:
            return (0, float(value), "")
        except OverflowError:  # an integer beyond floats
            return (0, math.copysign(math.inf, value), "")
    return (1, 0.0, str(value))


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """The table as CSV, written whole or not at all."""
    try:
        write_atomic(path, table.to_csv(index=False).encode())
    except OSError as err:
        raise InputError(
            f"--csv {path}: cannot write: {err.strerror or type(err).__name__}"
        ) from None


def check_column(table: pd.DataFrame, name: str, option: str) -> None:
    if name not in table.columns:
        known = [str(c) for c in table.columns]
        raise InputError(
            f"{option}: no column {name!r}{did_you_mean(name, known)}; columns: {', '.join(known)}"
        )


def default_columns(table: pd.DataFrame, overrides: list[str]) -> list[str]:
    wanted = ["point", *overrides, *DEFAULT_METRICS]
    return [c for c in wanted if c in table.columns]
