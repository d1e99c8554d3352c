"""The result store: one Parquet file per finished point, named by the point's key.

    SWEEP_DIR/
      sweep.json              the job: base scenario, axes, points (index, key, overrides)
      points/<key>.parquet    one row per finished point (ok or failed), never rewritten

A point file is written to a temporary name in the same directory and `os.replace`d into
place, so a process killed at any instant (SIGKILL included) leaves either the whole file
or none; leftover temporaries are deleted on open. Resuming is "skip the keys present":
nothing finished is lost and nothing is run twice. Rows are read back with pandas, since
override columns may mix types across points (e.g. `auto` and `fp8`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from infsim.errors import InputError

POINTS = "points"
MANIFEST = "sweep.json"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultStore:
    """Finished points of one sweep directory (shared by sweeps, searches and re-runs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.points_dir = root / POINTS
        try:
            self.points_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{root}: cannot create sweep directory: {err.strerror}") from None
        for stale in self.points_dir.glob(".tmp-*"):
            stale.unlink(missing_ok=True)

    def stored_keys(self) -> set[str]:
        # pathlib's * matches dot files: leave out temporaries (.tmp-*) being written
        return {p.stem for p in self.points_dir.glob("*.parquet") if not p.name.startswith(".")}

    def has(self, key: str) -> bool:
        return (self.points_dir / f"{key}.parquet").is_file()

    def write(self, row: dict[str, Any]) -> None:
        """Store one finished point's row (`row["key"]` names the file)."""
        table = pa.Table.from_pylist([_parquet_safe(row)])
        sink = pa.BufferOutputStream()
        pq.write_table(table.replace_schema_metadata(None), sink, compression="zstd")
        write_atomic(self.points_dir / f"{row['key']}.parquet", sink.getvalue().to_pybytes())

    def read(self, key: str) -> dict[str, Any]:
        return pq.read_table(self.points_dir / f"{key}.parquet").to_pylist()[0]

    def rows(self, keys: list[str] | None = None) -> pd.DataFrame:
        wanted = sorted(self.stored_keys()) if keys is None else [k for k in keys if self.has(k)]
        frames = [pq.read_table(self.points_dir / f"{k}.parquet").to_pandas() for k in wanted]
        frames = [f.dropna(axis=1, how="all") for f in frames]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- the manifest ---------------------------------------------------------------------
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        text = json.dumps(manifest, indent=1, default=str) + "\n"
        write_atomic(self.root / MANIFEST, text.encode())

    def manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.is_file():
            raise InputError(
                f"{self.root}: not a sweep directory (no {MANIFEST}); give the directory "
                "that infsim sweep, capacity or optimize wrote (-o)"
            )
        return json.loads(path.read_text())


def _parquet_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Values Arrow can store in a one-row table: lists/dicts become JSON text."""
    return {k: json.dumps(v) if isinstance(v, list | dict | tuple) else v for k, v in row.items()}
