"""Where calibrations live and how a scenario names one.

A scenario's `calibration:` is `roofline` (no table), a built-in name — a directory
under `builtin_dir()` (shipped defaults, e.g. `h100-vllm-0.19`) — or a path to a
calibration directory, relative to the scenario file.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from infsim.cost.table import CalibrationMeta, read
from infsim.errors import InputError, did_you_mean
from infsim.package_data import data_root


def builtin_dir() -> Path:
    """The directory of built-in tables, the one place that decides: the package data when
    present (an installed wheel's `infsim/_data/calibration/`), else the repository's
    `calibration/` (editable install, source checkout); see `infsim.package_data`.
    `infsim calibrate list` prints which one it read."""
    return data_root().path / "calibration"


def builtin_location() -> str:
    """Where built-in tables are read from, for messages: '<dir> (<origin>)'."""
    return data_root().describe("calibration")


def builtin_names() -> list[str]:
    directory = builtin_dir()
    if not directory.is_dir():
        return []
    # Hidden folders are an interrupted `calibrate import`'s temporaries, never tables.
    return sorted(p.name for p in directory.iterdir()
                  if not p.name.startswith(".") and (p / "meta.yaml").is_file())  # fmt: skip


def resolve_calibration(name_or_path: str, base_dir: Path) -> Path:
    candidate = Path(name_or_path)
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    if (candidate / "meta.yaml").is_file():
        return candidate.resolve()
    builtin = builtin_dir() / name_or_path
    if (builtin / "meta.yaml").is_file():
        return builtin
    names = builtin_names()
    raise InputError(
        f"unknown calibration {name_or_path!r}{did_you_mean(name_or_path, names)}: not a "
        f"built-in name and no calibration directory at {candidate}; built-in: "
        f"{', '.join(names) or '(none)'}, read from {builtin_location()}; or 'roofline'"
    )


def load_rows(directory: Path) -> tuple[pd.DataFrame, CalibrationMeta]:
    """The ops table as a DataFrame (cached per process: sweeps reuse it; a table rewritten
    since, e.g. by `infsim calibrate overhead`, is read again)."""
    stamps = tuple(
        (p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None
        for p in (directory / "ops.parquet", directory / "meta.yaml")
    )
    return _load_rows(directory, stamps)


@functools.lru_cache(maxsize=8)
def _load_rows(
    directory: Path, _stamps: tuple[tuple[int, int] | None, ...]
) -> tuple[pd.DataFrame, CalibrationMeta]:
    table, meta = read(directory)
    return table.to_pandas(), meta
