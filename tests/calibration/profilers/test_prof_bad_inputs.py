"""Regression tests of issue 15 for the profiler importers (PyTorch profiler traces, Nsight
kernel summaries and SQLite exports): each family of bad input that ended in a traceback
now ends in one `InputError` naming the file and the event, table, column or row — or, for
an op whose recorded shape is unusable, in a counted skip that the import's notes name."""

from __future__ import annotations

import gzip
import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest

import infsim.calibration.profilers  # noqa: F401  (registers the profiler importers)
from infsim.calibration.importers import ImportOptions, ImportResult, import_paths
from infsim.errors import InputError

STEP = "execute_context_1(10)_generation_4(4)"


def event(name: str, ts: Any = 0, dur: Any = 100, cat: str = "cpu_op", **extra: Any) -> dict:
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": dur,
            **extra}  # fmt: skip


def trace(tmp_path: Path, events: list[dict], raw: bytes | None = None, gz: bool = False) -> Path:
    path = tmp_path / ("t.json.gz" if gz else "t.json")
    text = raw if raw is not None else json.dumps({"traceEvents": events}).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def imported(fmt: str, path: Path, **options: Any) -> ImportResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return import_paths(fmt, [path], ImportOptions(**options))


def refused(fmt: str, path: Path, **options: Any) -> str:
    with pytest.raises(InputError) as err:
        imported(fmt, path, **options)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)
    return str(err.value)


# -- torch profiler (Kineto) traces --------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"ts": float("inf")}, "traceEvents[1]: ts is inf; expected a number of microseconds"),
        ({"ts": None}, "traceEvents[1]: ts is None; expected a number of microseconds"),
        ({"ts": "12"}, "traceEvents[1]: ts is '12'; expected a number"),
        ({"dur": -5}, "traceEvents[1]: dur is -5; expected a number of microseconds from 0"),
        ({"dur": float("nan")}, "traceEvents[1]: dur is nan"),
        ({"pid": [1]}, "traceEvents[1]: pid is [1]; expected a number or a string"),
    ],
)
def test_kineto_event_times_and_threads(tmp_path, bad, expected):
    events = [event(STEP, cat="user_annotation", dur=900), event("aten::add", 10) | bad]
    path = trace(tmp_path, events)
    assert f"{path}: {expected}" in refused("torch-profiler", path)


def test_kineto_flow_event_without_ts(tmp_path):
    """Was: TypeError float(None) in the ac2g flow index."""
    flow = {"ph": "f", "cat": "ac2g", "id": 7, "pid": 0, "tid": 7}
    path = trace(tmp_path, [event(STEP, cat="user_annotation"), flow])
    assert f"{path}: traceEvents[1]: ts is None" in refused("torch-profiler", path)


@pytest.mark.parametrize("correlation", [[7], "x", 1.5, None, {"a": 1}])
def test_kineto_odd_correlation_ids_are_not_joined(tmp_path, correlation):
    """Was: TypeError/ValueError int(correlation); such a kernel is now 'outside any op'."""
    events = [
        event(STEP, cat="user_annotation", dur=900),
        event(
            "aten::mm",
            10,
            50,
            args={"Input Dims": [[8, 16], [16, 32]], "Input type": ["float", "float"]},
        ),
        event("cudaLaunchKernel", 12, 2, cat="cuda_runtime", args={"correlation": correlation}),
        event("gemm_kernel", 100, 5, cat="kernel", args={"correlation": correlation}),
    ]
    result = imported("torch-profiler", trace(tmp_path, events), device="H100-SXM")
    assert "step" in set(result.frame["op"])
    assert "1 of 1 kernels outside any modelled op" in " ".join(result.meta["notes"])


@pytest.mark.parametrize(
    "dims",
    [
        [[float("nan"), 16], [16, 32]],
        [[float("inf"), 16], [16, 32]],
        [[1e300, 16], [16, 32]],
        [["8", 16], [16, 32]],
        [[True, 16], [16, 32]],
        [[2**70, 16], [16, 32]],
        [[2.5, 16], [16, 32]],
        [8, 16],
        {"a": 1},
    ],
)
def test_kineto_unusable_shapes_are_skipped_and_counted(tmp_path, dims):
    """Was: a NaN/inf/huge shape reached the table (TypeError or an int64 overflow)."""
    events = [
        event(STEP, cat="user_annotation", dur=900),
        event("aten::mm", 10, 50, args={"Input Dims": dims, "Input type": ["float", "float"]}),
    ]
    result = imported("torch-profiler", trace(tmp_path, events))
    assert set(result.frame["op"]) == {"step"}
    assert "aten::mm: unexpected" in " ".join(result.meta["notes"])


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"Group size": "x", "In msg nelems": 4, "dtype": "Float"}, "unexpected arguments"),
        ({"Group size": 2, "In msg nelems": [4], "dtype": "Float"}, "unexpected arguments"),
        ({"Group size": 2, "In msg nelems": 10**30, "dtype": "Float"}, "unexpected shape"),
    ],
)
def test_kineto_odd_collective_sizes(tmp_path, args, reason):
    events = [event(STEP, cat="user_annotation", dur=900),
              event("nccl:all_reduce", 10, 50, args=args)]  # fmt: skip
    result = imported("torch-profiler", trace(tmp_path, events))
    assert f"nccl:all_reduce: {reason}" in " ".join(result.meta["notes"])


def test_kineto_step_with_5000_digit_counts(tmp_path):
    """Was: ValueError (int() beyond the digit limit) on the step annotation."""
    huge = "execute_context_" + "9" * 5000 + "(1)_generation_0(0)"
    events = [event(STEP, cat="user_annotation", dur=900),
              event(huge, 1000, 900, cat="user_annotation")]  # fmt: skip
    result = imported("torch-profiler", trace(tmp_path, events))
    assert len(result.frame) == 1
    assert "step annotation with out-of-range counts ×1" in " ".join(result.meta["notes"])


@pytest.mark.parametrize(
    ("raw", "gz", "expected"),
    [
        (b"\x1f\x8b\x08\x00broken", False, "not a readable .gz file"),
        (json.dumps({"traceEvents": []}).encode("utf-16"), False, "not UTF-8 text (byte 0xff"),
        (b'{"traceEvents": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", True, "nested too deeply"),
        (b'{"traceEvents": [], "x": ' + b"9" * 5000 + b"}", False, "unreadable value"),
    ],
)
def test_kineto_unreadable_files(tmp_path, raw, gz, expected):
    path = trace(tmp_path, [], raw=raw, gz=gz)
    assert expected in refused("torch-profiler", path)


# -- Nsight: kern_sum CSVs, shape sidecars, SQLite exports ---------------------------------

HEADER = "Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),Name\n"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ('61.2,"1,234",inf,"12.0","12.0",11,15,3,rms_norm', "Instances is 'inf'; expected a"),
        ("61.2,1234,2.5,12.0,12.0,11,15,3,rms_norm", "Instances is 2.5; expected a whole count"),
        ("61.2,1234,100,12.0,nan,11,15,3,rms_norm", "Med (ns) is 'nan'; expected a number ≥ 0"),
        ("61.2,1234,100,12.0,-4,11,15,3,rms_norm", "Med (ns) is '-4'; expected a number ≥ 0"),
        ("61.2,1234,100,12.0,12.0,11,15,3,", "row 2: the kernel Name is blank"),
        ("61.2,1234,100,12.0", "row 2: the kernel Name is blank"),
    ],
)
def test_kern_sum_rows(tmp_path, row, expected):
    path = tmp_path / "k.csv"
    path.write_text(HEADER + row + "\n")
    (tmp_path / "k.csv.shape.json").write_text('{"num_tokens": 8}')
    assert expected in refused("nsys-kern-sum", path, device="H100-SXM")


SIDECARS = ['{"num_tokens": true}', '{"num_tokens": 1e400}', "[" * 1000, '{"num_tokens": 1e10}']


@pytest.mark.parametrize("sidecar", SIDECARS)
def test_shape_sidecar(tmp_path, sidecar):
    path = tmp_path / "k.csv"
    path.write_text(HEADER + "61.2,1234,100,12.0,12.0,11,15,3,rms_norm\n")
    (tmp_path / "k.csv.shape.json").write_text(sidecar)
    assert "k.csv.shape.json: " in refused("nsys-kern-sum", path, device="H100-SXM")


def sqlite_export(path: Path, *statements: str) -> Path:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER, end INTEGER, deviceId INTEGER,
            demangledName INTEGER);
        CREATE TABLE NVTX_EVENTS (start INTEGER, end INTEGER, text TEXT, textId INTEGER);
        INSERT INTO StringIds VALUES (1, 'rms_norm_kernel'),
            (2, 'execute_context_0(0)_generation_8(8)');
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (0, 2000, 0, 1), (100, 2100, 0, 1);
        INSERT INTO NVTX_EVENTS VALUES (0, 5000000, NULL, 2), (10, NULL, NULL, 2);
        """
    )
    for statement in statements:
        con.execute(statement)
    con.commit()
    con.close()
    return path


def test_sqlite_export_valid_and_open_nvtx_ranges(tmp_path):
    result = imported("nsys-sqlite", sqlite_export(tmp_path / "r.sqlite"), device="H100-SXM")
    assert result.frame["op"].tolist() == ["step"]  # the open range (end NULL) is not a step


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET end = NULL WHERE rowid = 2",
         "CUPTI_ACTIVITY_KIND_KERNEL row 2: end is None; expected integer nanoseconds"),
        ("UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET start = 'soon' WHERE rowid = 1",
         "CUPTI_ACTIVITY_KIND_KERNEL row 1: start is 'soon'; expected integer nanoseconds"),
        ("UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET end = -5 WHERE rowid = 1",
         "CUPTI_ACTIVITY_KIND_KERNEL row 1: end -5 is before start 0"),
        ("UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET demangledName = 99 WHERE rowid = 1",
         "CUPTI_ACTIVITY_KIND_KERNEL row 1: demangledName names no string in StringIds"),
        ("UPDATE NVTX_EVENTS SET start = NULL WHERE rowid = 1",
         "NVTX_EVENTS row 1: start is None; expected integer nanoseconds"),
        ("DROP TABLE StringIds", "no StringIds table (id, value) for the kernel names"),
        ("DROP TABLE CUPTI_ACTIVITY_KIND_KERNEL", "no CUPTI_ACTIVITY_KIND_KERNEL table"),
        ("ALTER TABLE NVTX_EVENTS DROP COLUMN start", "NVTX_EVENTS lacks start/end/text"),
        ("UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET deviceId = NULL WHERE rowid = 1",
         "kernels from 2 devices ['0', 'None']"),
    ],
)  # fmt: skip
def test_sqlite_nulls_text_and_missing_tables(tmp_path, statement, expected):
    """Was: TypeError on NULL durations, OperationalError on a missing table or column."""
    path = sqlite_export(tmp_path / "r.sqlite", statement)
    assert f"{path}: {expected}" in refused("nsys-sqlite", path, device="H100-SXM")


def test_sqlite_damaged_pages(tmp_path):
    path = sqlite_export(tmp_path / "r.sqlite")
    raw = bytearray(path.read_bytes())
    for i in range(100, len(raw), 97):  # past the 100-byte header: the b-tree pages
        raw[i] ^= 0xA5
    path.write_bytes(bytes(raw))
    assert "not an Nsight Systems SQLite export, or damaged" in refused(
        "nsys-sqlite", path, device="H100-SXM"
    )
