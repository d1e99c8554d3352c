"""Importers: profiler and benchmark exports → calibration rows (`calibration.table`).

    import_paths("aiconfigurator", [Path(".../data/h100_sxm")], ImportOptions(engine="vllm",
                 engine_version="0.19.0"))  →  ImportResult(frame, meta, provenance)

One importer per source format, registered by the name the CLI uses
(`infsim calibrate import FORMAT PATH …`):

    aiconfigurator   NVIDIA AIConfigurator perf databases (Parquet), or an installed
                     `aiconfigurator-core` package (`aiconfigurator_data_dir()`)
    vidur            Vidur `compute/<gpu>/<org>/<model>/mlp.csv`, `network/<topo>/*.csv`
    llmservingsim    LLMServingSim v1 bundles (`perf/<HW>/<org>/<model>/<variant>/tp<N>/`)
    nccl-tests       APEX+ nccl-tests CSVs and raw `*_perf` stdout

An importer returns a frame in the canonical columns (a subset; `to_table` fills the rest)
plus a `source` column naming each row's file. `import_paths` is all-or-nothing: it drops
compute rows whose dtype is not in `ImportOptions.dtypes`, validates every file's rows with
`to_table` (so an error names the file), and returns the result only when all of it is
valid; otherwise it raises `InputError` and nothing is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from infsim.calibration.importers._common import MAX_SHAPE, SOURCE, dtype_name, floats, show
from infsim.cost.table import COLLECTIVES, SHAPE_COLUMNS, Provenance, to_table
from infsim.errors import InputError
from infsim.registry import Registry

__all__ = [
    "ImportOptions",
    "ImportResult",
    "Importer",
    "aiconfigurator_data_dir",
    "check_rows",
    "import_paths",
    "importers",
]


@dataclass(frozen=True)
class ImportOptions:
    """What to take from the source files and how to label it."""

    device: str | None = None
    """Hardware catalog name; overrides the device read from the files (needed when the
    files do not say, e.g. raw nccl-tests output)."""
    engine: str | None = None
    """Engine to keep (vllm, sglang, trtllm) where a source holds several; else a label."""
    engine_version: str | None = None
    """Engine version to keep (e.g. "0.19.0") where a source holds several."""
    model: str | None = None
    """Catalog model name, for model-specific tables (LLMServingSim bundles)."""
    dtypes: tuple[str, ...] = ()
    """Compute dtypes to keep (any precision spelling); () keeps all. Collective rows are
    kept whatever their element dtype: their cost depends on bytes, not on the dtype."""


@dataclass(frozen=True)
class ImportResult:
    """A complete, validated import: rows, CalibrationMeta fields, one Provenance per file."""

    frame: pd.DataFrame
    meta: dict[str, object]
    provenance: tuple[Provenance, ...] = field(default=())


Importer = Callable[[list[Path], ImportOptions], ImportResult]
importers: Registry[Importer] = Registry("calibration importer")


def import_paths(fmt: str, paths: list[Path], options: ImportOptions) -> ImportResult:
    """Run importer `fmt` on `paths`; return a valid result or raise `InputError`."""
    importer = importers.get(fmt)
    if not paths:
        raise InputError(f"{fmt}: no input files given")
    for path in paths:
        if not Path(path).exists():
            raise InputError(f"{path}: no such file or directory")
    result = importer([Path(p) for p in paths], options)
    frame = _keep_dtypes(result.frame, options.dtypes)
    described = ", ".join(map(str, paths))
    if frame.empty:
        raise InputError(
            f"{described}: no rows left after filters (dtypes={list(options.dtypes)}, "
            f"engine={options.engine}, engine_version={options.engine_version})"
        )
    sources = frame[SOURCE] if SOURCE in frame.columns else pd.Series(described, frame.index)
    for source, rows in frame.groupby(sources, sort=False):
        rows = rows.reset_index(drop=True)
        check_rows(rows, str(source))
        to_table(rows, str(source))
    kept = sources.value_counts()
    provenance = tuple(
        p.model_copy(update={"rows": int(kept.get(p.path, 0))}) for p in result.provenance
    )
    frame = frame.drop(columns=[SOURCE], errors="ignore").reset_index(drop=True)
    return ImportResult(frame=frame, meta=result.meta, provenance=provenance)


TEXT_COLUMNS = ("op", "dtype", "kv_dtype", "variant")


def check_rows(rows: pd.DataFrame, source: str) -> None:
    """What `to_table` needs of an importer's rows, checked with a message: shapes are whole
    numbers up to 2^53 (or null), times are numbers (their sign and finiteness are
    `validate`'s), labels are text (or null). A source value no table can hold is named
    here — file, calibration row, column — instead of failing inside pandas or Arrow."""
    for column in (*SHAPE_COLUMNS, "time_s"):
        if column not in rows.columns:
            continue
        values = floats(rows[column])
        given = ~rows[column].isna().to_numpy()
        with np.errstate(invalid="ignore"):
            bad = given & np.isnan(values)  # text, a bool, a list
            if column != "time_s":
                bad |= given & ~(np.abs(values) <= MAX_SHAPE)
                bad |= given & np.isfinite(values) & (values != np.round(values))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            expected = "a number" if column == "time_s" else "a whole number up to 2^53"
            raise InputError(f"{_row(rows, i, source)}: {column} is {show(rows[column].iloc[i])};"
                             f" expected {expected} ({int(bad.sum())} such rows)")  # fmt: skip
    for column in TEXT_COLUMNS:
        if column not in rows.columns:
            continue
        bad = [i for i, v in enumerate(rows[column]) if not (v is None or _is_na(v) or
                                                             isinstance(v, str))]  # fmt: skip
        if bad:
            raise InputError(f"{_row(rows, bad[0], source)}: {column} is "
                             f"{show(rows[column].iloc[bad[0]])}; expected text")  # fmt: skip


def _is_na(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _row(rows: pd.DataFrame, i: int, source: str) -> str:
    op = rows["op"].iloc[i] if "op" in rows.columns else None
    variant = rows["variant"].iloc[i] if "variant" in rows.columns else None
    return f"{source}: calibration row {i} (op {show(op)}, variant {show(variant)})"


def _keep_dtypes(frame: pd.DataFrame, dtypes: tuple[str, ...]) -> pd.DataFrame:
    if not dtypes:
        return frame
    wanted = {dtype_name(d, Path("ImportOptions.dtypes")) for d in dtypes}
    keep = frame["op"].isin(COLLECTIVES) | frame["dtype"].isin(wanted)
    return frame[keep]


from infsim.calibration.importers import (  # noqa: E402  (registration side effects)
    aiconfigurator,
    llmservingsim,
    nccl_tests,
    vidur,
)
from infsim.calibration.importers.aiconfigurator import aiconfigurator_data_dir  # noqa: E402

del aiconfigurator, llmservingsim, nccl_tests, vidur
