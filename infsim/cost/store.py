"""Where calibrations live and how a scenario names one.

A scenario's `calibration:` is `roofline` (no table), `auto` (the built-in table measured
on the scenario's GPU, see `pick_auto`), a built-in name — a directory under
`builtin_dir()` (shipped defaults, e.g. `h100-vllm-0.19`) — or a path to a calibration
directory, relative to the scenario file.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from infsim.cost.table import CalibrationMeta, read
from infsim.errors import InputError, did_you_mean
from infsim.package_data import data_root
from infsim.textio import load_yaml, read_text

if TYPE_CHECKING:
    import pandas as pd

AUTO = "auto"
"""`calibration: auto`: pick the built-in table measured on the scenario's GPU."""


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


# -- calibration: auto ----------------------------------------------------------------------
@dataclass(frozen=True)
class AutoChoice:
    """What `calibration: auto` chose for one GPU: a built-in table (`name`), or None = the
    roofline because no built-in table was measured on that GPU. `reason` says why, in
    words; `warning` is set when the choice is a fallback the user should know about (no
    table for the GPU, or none for the requested engine version)."""

    gpu: str
    engine_version: str | None
    name: str | None
    reason: str
    warning: str | None = None

    @property
    def table(self) -> str:
        return self.name or "roofline"

    def record(self) -> dict[str, Any]:
        """summary.json's `calibration.auto` entry for this choice."""
        return {
            "source": AUTO,
            "gpu": self.gpu,
            "engine_version": self.engine_version,
            "table": self.table,
            "reason": self.reason,
            "warning": self.warning,
        }


def _version_key(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.replace("vllm", "").strip().split(".") if p.isdigit()]
    return tuple(parts)


@functools.lru_cache(maxsize=4)
def _builtin_metas(directory: Path) -> tuple[tuple[str, CalibrationMeta], ...]:
    """(name, metadata) of each built-in table whose meta.yaml reads; a damaged one is left
    to the error a scenario naming it would get."""
    out = []
    for name in builtin_names():
        path = directory / name / "meta.yaml"
        try:
            raw = load_yaml(read_text(path, "calibration metadata"), str(path))
            out.append((name, CalibrationMeta.model_validate(raw)))
        except (InputError, ValidationError):
            continue
    return tuple(out)


def pick_auto(gpu_name: str, engine_version: str | None, device_name: Any = None) -> AutoChoice:
    """The built-in table for `gpu_name` (a catalog GPU name, e.g. `H100-SXM`): among the
    tables measured on that device under vLLM (engine `vllm` first, then `vllm-*` builds,
    then other engines), the one of `engine_version` when given and shipped, else the
    newest release (with a warning when a version was asked for). No table for the device:
    None, the roofline, with a warning. `device_name(meta.device)` maps a table's device to
    a catalog GPU name (default: `infsim.catalog.hardware.load_gpu`)."""
    if device_name is None:
        from infsim.catalog.hardware import load_gpu

        def device_name(device: str) -> str:
            try:
                return load_gpu(device).name
            except InputError:
                return device

    tables = [(n, m) for n, m in _builtin_metas(builtin_dir()) if device_name(m.device) == gpu_name]
    if not tables:
        shipped = ", ".join(sorted({m.device for _, m in _builtin_metas(builtin_dir())}))
        why = (
            f"no built-in calibration table was measured on {gpu_name} (tables exist for "
            f"{shipped or 'no device'}); using the roofline (analytic, uncalibrated)"
        )
        return AutoChoice(gpu_name, engine_version, None, why, warning=why)

    def rank(item: tuple[str, CalibrationMeta]) -> tuple[int, tuple[int, ...], str]:
        name, meta = item
        engine = 0 if meta.engine == "vllm" else 1 if meta.engine.startswith("vllm") else 2
        # newest first within an engine: negate the version parts
        return engine, tuple(-p for p in _version_key(meta.engine_version)), name

    tables.sort(key=rank)
    if engine_version is not None:
        for name, meta in tables:
            if meta.engine.startswith("vllm") and _version_key(meta.engine_version) == (
                _version_key(engine_version)
            ):
                why = f"measured on {meta.device} with {meta.engine} {meta.engine_version}"
                return AutoChoice(gpu_name, engine_version, name, why)
    name, meta = tables[0]
    why = f"measured on {meta.device} with {meta.engine} {meta.engine_version or '?'}"
    warning = None
    if engine_version is not None:
        warning = (
            f"no built-in table for {gpu_name} was measured with vllm {engine_version}; "
            f"using {name} ({meta.engine} {meta.engine_version or '?'})"
        )
        why = warning
    return AutoChoice(gpu_name, engine_version, name, why, warning)


_told: set[str] = set()  # auto choices already printed by this process


def tell_auto(choice: AutoChoice, source: str) -> None:
    """Print an auto choice once per process on stderr: a warning for a fallback, a note
    otherwise (sweeps resolve the same scenario many times)."""
    kind = "warning" if choice.warning else "note"
    line = (
        f"infsim: {kind}: {source}: calibration: auto: {choice.gpu} → {choice.table} "
        f"({choice.reason})"
    )
    if line in _told:
        return
    _told.add(line)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
