"""The calibration table format: validation, round trip, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from infsim.cost.table import CalibrationMeta, read, to_table, write
from infsim.errors import InputError

META = CalibrationMeta(
    name="t", device="H100-SXM", engine="vllm", engine_version="0.19.0", source="test",
    profiler="synthetic", importer="test",
)  # fmt: skip


def _gemm_rows(**overrides):
    rows = {"op": ["gemm", "gemm"], "dtype": ["bfloat16"] * 2, "m": [1, 2], "n": [64, 64],
            "k": [32, 32], "time_s": [1e-5, 1.2e-5]}  # fmt: skip
    rows.update(overrides)
    return pd.DataFrame(rows)


def test_round_trip_is_byte_identical(tmp_path: Path):
    table = to_table(_gemm_rows(), "x")
    write(tmp_path / "a", table, META)
    write(tmp_path / "b", table, META)
    assert (tmp_path / "a" / "ops.parquet").read_bytes() == (
        tmp_path / "b" / "ops.parquet"
    ).read_bytes()
    back, meta = read(tmp_path / "a")
    assert back.equals(table)
    assert meta == META


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (_gemm_rows(op=["gemm", "matmul"]), r"unknown op\(s\) \['matmul'\]"),
        (_gemm_rows(time_s=[1e-5, -1.0]), r"row 1: time_s must be a positive"),
        (_gemm_rows(n=[64, None]), r"row 1: op 'gemm' needs a positive 'n'"),
        (_gemm_rows().iloc[0:0], "no calibration rows"),
    ],
)
def test_invalid_rows_name_the_row(rows: pd.DataFrame, message: str):
    with pytest.raises(InputError, match=message):
        to_table(rows, "prof.csv")


def test_missing_time_column():
    with pytest.raises(InputError, match="lack column"):
        to_table(_gemm_rows().drop(columns=["time_s"]), "prof.csv")


def test_read_rejects_non_calibration_directory(tmp_path: Path):
    with pytest.raises(InputError, match="not a calibration directory"):
        read(tmp_path)
