"""Shared helpers for the importers: strict file reading, units, dtypes and devices.

Every helper raises `InputError` naming the file and what is wrong, so an importer is a
short sequence of reads and column arithmetic. Conventions shared by all importers:

    times     converted to seconds from the unit the source states (column name or doc)
    sizes     converted to bytes (`message_bytes`)
    dtypes    canonical names of `infsim.catalog.precision` where one exists; source names
              without a canonical equivalent keep a descriptive name (`SOURCE_DTYPES`)
    devices   hardware catalog names (`DEVICE_NAMES`), or the name the user gave
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from infsim.catalog import precision
from infsim.cost.table import Provenance
from infsim.errors import InputError
from infsim.textio import read_text

SOURCE = "source"
"""Extra frame column naming the file each row came from (dropped by `import_paths`)."""

SOURCE_DTYPES: dict[str, str] = {
    "int4_wo": "int4",  # AIC: 4-bit weight-only GEMM/MoE (w4a16) = canonical int4
    "int8_wo": "int8",  # AIC: 8-bit weight-only (w8a16) = canonical int8
    "fp8_block": "fp8_block",  # AIC: fp8 with 128x128 block scales (DeepSeek style)
    "sq": "int8_sq",  # AIC TRT-LLM SmoothQuant: int8 weights AND activations (w8a8)
    "w4a16_mxfp4": "fp4_wo",  # AIC: mxfp4 weights, 16-bit activations
}
"""Source dtype names that are not `precision` aliases → the name used in tables."""

DEVICE_NAMES: dict[str, str] = {
    "h100_sxm": "H100-SXM",
    "h100": "H100-SXM",
    "h100-sxm-80gb": "H100-SXM",
    "a100_sxm": "A100-80GB",  # AIC system spec: mem_capacity 80 GiB
    "a100": "A100-80GB",
    "h200_sxm": "H200",
    "h200": "H200",
    "h200-sxm-141gb": "H200",
    "rtxpro6000": "RTX-PRO-6000",
    "rtx4090": "RTX-4090",
}
"""Device spellings of the sources (folder names, APEX+ `gpu` column) → catalog names."""

TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0}
SIZE_UNITS = {"b": 1, "bytes": 1, "kb": 1024, "kib": 1024, "mb": 2**20, "mib": 2**20}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_provenance(
    files: Sequence[Path], frames: Sequence[pd.DataFrame]
) -> tuple[Provenance, ...]:
    """One `Provenance` per source file: its path, the rows read from it, its SHA-256."""
    return tuple(
        Provenance(path=str(f), rows=len(fr), sha256=sha256(f))
        for f, fr in zip(files, frames, strict=True)
    )


MAX_SHAPE = 2**53
"""Largest shape value (or count) accepted: exact in a float, far within int64."""


def read_csv(path: Path, required: Iterable[str] = ()) -> pd.DataFrame:
    """A non-empty CSV with the `required` columns (UTF-8 text, `infsim.textio`)."""
    text = read_text(path, "CSV file")
    _check_row_lengths(text, path)
    try:
        frame = pd.read_csv(io.StringIO(text), index_col=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file (no header, no rows)") from None
    except (pd.errors.ParserError, ValueError, OverflowError, csv.Error) as err:
        raise InputError(f"{path}: not a readable CSV file: {_first_line(err)}") from None
    require_columns(frame, required, path)
    return frame


def _check_row_lengths(text: str, path: Path) -> None:
    """Every row has as many fields as the header (pandas would otherwise take a longer
    row's first field as an index, or fill a shorter one with blanks)."""
    try:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        for row in reader:
            if row and len(row) != len(header or ()):
                raise InputError(
                    f"{path}: line {reader.line_num}: {len(row)} fields, but the header "
                    f"has {len(header or ())}"
                )
    except csv.Error as err:
        raise InputError(f"{path}: not a readable CSV file: {err}") from None


def read_parquet(path: Path, columns: Sequence[str], optional: Sequence[str] = ()) -> pd.DataFrame:
    """The `columns` (and those of `optional` present) of a non-empty Parquet file."""
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable Parquet file: {_first_line(err)}") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(names)}"
        )
    wanted = [*columns, *(c for c in optional if c in names)]
    twice = sorted({c for c in wanted if names.count(c) > 1})
    if twice:
        raise InputError(f"{path}: column(s) {', '.join(twice)} appear more than once")
    try:
        table = pq.read_table(path, columns=wanted)
        table.validate(full=True)  # damaged pages (e.g. text that is not UTF-8) fail here
        frame = table.to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError) as err:
        raise InputError(f"{path}: unreadable Parquet data: {_first_line(err)}") from None
    if frame.empty:
        raise InputError(f"{path}: empty table (no rows)")
    return frame


def _first_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text if len(text) <= 200 else text[:199] + "…"


def require_columns(frame: pd.DataFrame, required: Iterable[str], path: Path) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"the file has {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise InputError(f"{path}: empty table (header only, no rows)")


def show(value: object) -> str:
    """A cell's repr (numpy scalars as Python's), cut to 80 characters."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        text = repr(value)
    except ValueError:  # an integer beyond the digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:79] + "…"


def numbers(
    frame: pd.DataFrame,
    column: str | int,
    path: Path,
    *,
    positive: bool = False,
    integral: bool = False,
    allow_null: bool = False,
    hi: float = MAX_SHAPE,
) -> np.ndarray:
    """Column as floats, each finite, |x| ≤ hi, and positive / integral where asked; a
    blank (unless `allow_null`: NaN), non-numeric (text, a bool, a list) or out-of-range
    cell is an error naming the column and row."""
    series = frame[column]
    values = floats(series)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (np.abs(values) > hi)
        if positive:
            bad |= values <= 0
        if integral:
            bad |= values != np.round(values)
        if allow_null:
            bad &= ~(np.isnan(values) & series.isna().to_numpy())
    bad = np.flatnonzero(bad)
    if bad.size:
        i = int(bad[0])
        kind = "positive " if positive else ""
        kind += "whole " if integral else ""
        raise InputError(
            f"{path}: column {column!r} row {i}: not a {kind}number"
            f"{' (or blank)' if allow_null else ''} up to {_bound(hi)}: {show(series.iloc[i])} "
            f"({bad.size} such rows)"
        )
    return values


def _bound(hi: float) -> str:
    return "2^53" if hi == MAX_SHAPE else f"{hi:,.0f}" if hi == int(hi) else f"{hi:g}"


def floats(series: pd.Series) -> np.ndarray:
    """Numeric cells as floats, anything else (text, bool, list, blank) as NaN."""
    if pd.api.types.is_bool_dtype(series):
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series):
        with np.errstate(over="ignore", invalid="ignore"):
            return series.to_numpy(dtype=float, na_value=np.nan)
    out = np.full(len(series), np.nan)
    for i, value in enumerate(series.to_numpy(dtype=object)):
        if isinstance(value, bool | np.bool_):
            continue
        if isinstance(value, int | float | np.integer | np.floating):
            try:
                out[i] = float(value)
            except OverflowError:
                out[i] = np.inf
        elif isinstance(value, str):
            out[i] = _parse_number(value)
    return out


def _parse_number(text: str) -> float:
    try:
        return float(text.strip())
    except (ValueError, OverflowError):
        return np.nan


def text_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A column of non-blank text cells (a number, list or blank is an error naming the row)."""
    series = frame[column]
    for i, value in enumerate(series.to_numpy(dtype=object)):
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{path}: column {column!r} row {i}: expected text, got {show(value)}")
    return series


def unit_column(
    frame: pd.DataFrame, path: Path, stems: Sequence[str], units: Mapping[str, float]
) -> tuple[str, float]:
    """Find the column `<stem>_<unit>` or `<stem>(<unit>)`; return it and its factor to SI."""
    pattern = re.compile(rf"^(?:{'|'.join(map(re.escape, stems))})\s*[_(\[]\s*([^)\]]+)[)\]]?$")
    for column in frame.columns:
        match = pattern.match(str(column).strip().lower())
        if match:
            unit = match.group(1).strip()
            if unit not in units:
                raise InputError(
                    f"{path}: column {column!r}: unknown unit {unit!r}; allowed: {', '.join(units)}"
                )
            return str(column), units[unit]
    raise InputError(
        f"{path}: no {'/'.join(stems)} column with a unit (e.g. {stems[0]}_{next(iter(units))}); "
        f"the file has {', '.join(map(str, frame.columns))}"
    )


def dtype_name(name: object, path: Path) -> str:
    """Canonical precision name of a source dtype (see `SOURCE_DTYPES`)."""
    key = str(name).strip().lower()
    if key in SOURCE_DTYPES:
        return SOURCE_DTYPES[key]
    try:
        return precision.canonical(key)
    except InputError as err:
        raise InputError(f"{path}: unknown dtype {name!r}: {err}") from None


def dtype_column(values: pd.Series, path: Path) -> pd.Series:
    """Canonical names of a column of dtype names (text, none blank)."""
    if values.isna().any():
        raise InputError(f"{path}: blank dtype in column {values.name!r}")
    text_column(values.to_frame(), values.name, path)
    mapping = {raw: dtype_name(raw, path) for raw in values.unique()}
    return values.map(mapping)


def device_name(raw: str) -> str | None:
    """Catalog name for a source's device spelling, or None when unknown."""
    key = raw.strip().lower()
    if key in DEVICE_NAMES:
        return DEVICE_NAMES[key]
    from infsim.catalog.hardware import load_gpu

    try:
        return load_gpu(key).name
    except InputError:
        return None


def one_device(found: Mapping[Path, str | None], override: str | None) -> str:
    """The single device of all files: the user's override, else the one they agree on."""
    known = {path: dev for path, dev in found.items() if dev is not None}
    names = sorted(set(known.values()))
    if len(names) > 1:
        listing = "; ".join(f"{p}: {d}" for p, d in known.items())
        raise InputError(f"mixed devices across files ({listing}); import one device at a time")
    if override:
        return device_name(override) or override
    if not names:
        raise InputError(
            f"{', '.join(map(str, found))}: cannot tell the device from the files; "
            "name it (ImportOptions.device / --device)"
        )
    return names[0]


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Sort key for versions like 0.19.0, 1.3.0rc20, 2.27.3."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.]", version))
