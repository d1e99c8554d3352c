"""Importers `nsys-kern-sum` and `nsys-sqlite`: Nsight Systems kernel tables (FORMATS.md §4.3).

Nsight kernel records carry a kernel *name* but no tensor shapes, so what becomes a
calibration row depends on what else is known:

* **steps** — in `nsys export --type sqlite`, NVTX ranges named like vLLM's step
  annotation `execute_context_1(10)_generation_4(4)` give op `step` rows (num_tokens,
  batch_size from the name; time = the range's duration, median per name).
* **per-token ops** — norm, activation, rotary and elementwise kernels need only
  `num_tokens`, which the user states for a fixed-shape profile (e.g. `vllm bench latency
  --batch-size 8 --input-len 1` → 8 tokens per step) in a sidecar file next to the report,
  `<report>.shape.json` = `{"num_tokens": 8}`.
* GEMM, attention and collective kernels need m/n/k, sequence lengths or message sizes that
  neither the name nor one token count determines: they are counted in the notes, never
  guessed. Without step ranges and without a shape file the import fails and says why.

Kernel names map to ops by pattern (`KERNEL_PATTERNS`); `variant` is the kernel name.
"""

from __future__ import annotations

import csv
import io
import math
import re
import sqlite3
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from infsim.calibration.profilers.torch_profiler import MAX_STEP_COUNT, STEP_RE, step_shape
from infsim.errors import InputError
from infsim.textio import load_json, read_text

KERNEL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("all_reduce", re.compile(r"allreduce|all_reduce|cross_device_reduce", re.I)),
    ("all_gather", re.compile(r"allgather|all_gather", re.I)),
    ("reduce_scatter", re.compile(r"reducescatter|reduce_scatter", re.I)),
    ("attention", re.compile(r"flash|fmha|attention|attn", re.I)),
    ("gemm", re.compile(r"gemm|cutlass|cublas|xmma|sm\d+_.*mma|matmul|nvjet", re.I)),
    ("norm", re.compile(r"rms_?norm|layer_?norm|layernorm", re.I)),
    ("activation", re.compile(r"silu|gelu|act_and_mul", re.I)),
    ("rotary", re.compile(r"rotary|rope", re.I)),
)
"""First match wins; collectives first (NCCL kernel names contain no 'gemm')."""
PER_TOKEN_OPS = frozenset({"norm", "activation", "rotary"})
UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def kernel_op(name: str) -> str | None:
    """Canonical op family of a kernel name, or None when no pattern matches."""
    return next((op for op, pattern in KERNEL_PATTERNS if pattern.search(name)), None)


MAX_INSTANCES = 10**15


def read_kern_sum(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """`nsys stats --report cuda_gpu_kern_sum --format csv` → rows and notes."""
    header, records = _csv_records(path)
    unit, time_col = _time_column(path, header)
    if "Name" not in header:
        raise InputError(f"{path}: no 'Name' column in the kernel summary header {header}")
    medians: dict[str, float] = {}
    counts: dict[str, int] = {}
    for i, record in enumerate(records, start=2):
        name = record.get("Name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{path}: row {i}: the kernel Name is blank")
        where = f"{path}: row {i} ({name[:60]})"
        seconds = _number(record.get(time_col), where, time_col) * UNIT_S[unit]
        instances = _number(record.get("Instances") or "1", where, "Instances")
        if instances != int(instances) or not 1 <= instances <= MAX_INSTANCES:
            raise InputError(f"{where}: Instances is {instances:g}; expected a whole count ≥ 1")
        medians[name], counts[name] = seconds, int(instances)
    if not medians:
        raise InputError(f"{path}: the kernel summary has no rows")
    return _rows(path, medians, counts, steps={})


def read_sqlite(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """`nsys export --type sqlite` → rows from kernel and NVTX step tables, and notes.

    Any SQLite failure (not a database, damaged pages, a missing table or column) and any
    NULL or non-numeric time is an `InputError` naming the file and the table."""
    try:
        con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise InputError(f"{path}: not an Nsight Systems SQLite export ({err})") from None
    table = "sqlite_master"
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if KERNELS not in tables:
            raise InputError(
                f"{path}: no {KERNELS} table (was the GPU traced? nsys profile --trace=cuda)"
            )
        table = KERNELS
        durations, devices = _kernel_durations(con, path, tables)
        table = "NVTX_EVENTS"
        steps = _nvtx_steps(con, path, tables) if "NVTX_EVENTS" in tables else {}
    except (sqlite3.Error, UnicodeDecodeError) as err:  # damaged pages, text not UTF-8
        raise InputError(
            f"{path}: not an Nsight Systems SQLite export, or damaged ({table}: {err})"
        ) from None
    finally:
        con.close()
    if len(devices) > 1:
        raise InputError(
            f"{path}: kernels from {len(devices)} devices {sorted(devices)}; "
            "a calibration describes one device (export one rank)"
        )
    medians = {name: statistics.median(times) for name, times in durations.items()}
    counts = {name: len(times) for name, times in durations.items()}
    return _rows(path, medians, counts, steps)


def _rows(
    path: Path, medians: dict[str, float], counts: dict[str, int], steps: dict[str, list[float]]
) -> tuple[pd.DataFrame, list[str]]:
    shape = _shape_file(path)
    rows, skipped = [], Counter()
    for name, time_s in sorted(medians.items()):
        op = kernel_op(name)
        if op in PER_TOKEN_OPS and shape and time_s > 0:
            rows.append({"op": op, "variant": name, "time_s": time_s, **shape})
        else:
            skipped[op or "unmatched"] += counts[name]
    for name, times in sorted(steps.items()):
        step = step_shape(name)
        if not isinstance(step, tuple):
            skipped[step or "not a step"] += len(times)
            continue
        batch_size, num_tokens = step
        rows.append(
            {
                "op": "step",
                "variant": name,
                "time_s": statistics.median(times),
                "num_tokens": num_tokens,
                "batch_size": batch_size,
            }
        )
    if not rows:
        raise InputError(
            f"{path}: Nsight kernel records carry no shapes, so nothing here can become a "
            "calibration row: add NVTX step ranges (vLLM execute_context_…) or, for a "
            f"fixed-shape profile, write {path.name}.shape.json with the tokens per step, "
            'e.g. {"num_tokens": 8}. Per-token kernels found: '
            f"{sum(skipped[op] for op in PER_TOKEN_OPS)}"
        )
    notes = [
        "Nsight kernel names carry no shapes: "
        + (
            f"num_tokens {shape['num_tokens']} is the user's statement in the shape file; "
            if shape
            else "no shape file, so only NVTX step ranges were used; "
        )
        + "variant is the kernel name; time_s the median instance time.",
    ]
    if skipped:
        top = ", ".join(f"{op} ×{n}" for op, n in skipped.most_common())
        notes.append(f"kernel instances without a calibration row (shape unknown): {top}")
    return pd.DataFrame(rows), notes


def _shape_file(path: Path) -> dict[str, int]:
    sidecar = path.with_name(path.name + ".shape.json")
    if not sidecar.is_file():
        return {}
    data = load_json(read_text(sidecar, "shape file"), str(sidecar))
    tokens = data.get("num_tokens") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or set(data) != {"num_tokens"}
        or isinstance(tokens, bool)
        or not isinstance(tokens, int)
        or not 1 <= tokens <= MAX_STEP_COUNT
    ):
        raise InputError(
            f'{sidecar}: expected {{"num_tokens": <positive int up to {MAX_STEP_COUNT:,}>}}'
        )
    return {"num_tokens": tokens}


def _csv_records(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    lines = read_text(path, "kernel summary CSV").splitlines()
    # nsys prints "Generating SQLite file…" / "Processing […]" before the header.
    start = next((i for i, line in enumerate(lines) if "Name" in line and "(" in line), None)
    if start is None:
        raise InputError(
            f"{path}: no cuda_gpu_kern_sum header (a 'Name' column and "
            "'Total Time (ns)'-style columns) found"
        )
    try:
        reader = csv.DictReader(io.StringIO("\n".join(lines[start:])))
        return list(reader.fieldnames or []), [r for r in reader if any(r.values())]
    except csv.Error as err:
        raise InputError(f"{path}: not a readable CSV ({err})") from None


def _time_column(path: Path, header: list[str]) -> tuple[str, str]:
    for prefix in ("Med", "Avg"):
        for column in header:
            match = re.fullmatch(rf"{prefix} \((\w+)\)", column.strip())
            if match:
                if match.group(1) not in UNIT_S:
                    raise InputError(
                        f"{path}: unknown time unit {match.group(1)!r} in "
                        f"column {column!r}; allowed: {', '.join(UNIT_S)}"
                    )
                return match.group(1), column
    raise InputError(f"{path}: no 'Med (<unit>)' or 'Avg (<unit>)' column in {header}")


def _number(text: object, where: str, column: str) -> float:
    """A summary cell ("1,234.5") as a finite number ≥ 0."""
    try:
        value = float(str(text).replace(",", "").strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{where}: {column} is {str(text)[:40]!r}; expected a number ≥ 0")
    return value


KERNELS = "CUPTI_ACTIVITY_KIND_KERNEL"


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}


def _duration_s(start: object, end: object, path: Path, table: str, rowid: object) -> float:
    """`end - start` of one row (integer nanoseconds) in seconds; a NULL, text or
    reversed pair is an error naming the table and row."""
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(
                f"{path}: {table} row {rowid}: {name} is {repr(value)[:40]}; expected integer "
                "nanoseconds (a NULL or text cell is a damaged export)"
            )
    if end < start:  # type: ignore[operator]
        raise InputError(f"{path}: {table} row {rowid}: end {end} is before start {start}")
    return (end - start) * 1e-9  # type: ignore[operator]


def _kernel_durations(
    con: sqlite3.Connection, path: Path, tables: set[str]
) -> tuple[dict[str, list[float]], set[str]]:
    """Kernel name → durations (s), and the device ids (as text) the kernels ran on."""
    columns = _columns(con, KERNELS)
    name_col = next((c for c in ("demangledName", "shortName") if c in columns), None)
    if name_col is None or not {"start", "end"} <= columns:
        raise InputError(f"{path}: {KERNELS} lacks start/end/demangledName")
    if "StringIds" not in tables or not {"id", "value"} <= _columns(con, "StringIds"):
        raise InputError(f"{path}: no StringIds table (id, value) for the kernel names")
    device = "k.deviceId" if "deviceId" in columns else "NULL"
    query = (
        f"SELECT k.rowid, s.value, k.start, k.[end], {device} FROM {KERNELS} k "
        f"LEFT JOIN StringIds s ON s.id = k.{name_col}"
    )
    durations: dict[str, list[float]] = defaultdict(list)
    devices: set[str] = set()
    for rowid, name, start, end, device_id in con.execute(query):
        if name is None:
            raise InputError(
                f"{path}: {KERNELS} row {rowid}: {name_col} names no string in StringIds"
            )
        durations[str(name)].append(_duration_s(start, end, path, KERNELS, rowid))
        devices.add(str(device_id))
    if not durations:
        raise InputError(f"{path}: {KERNELS} is empty")
    return durations, devices


def _nvtx_steps(con: sqlite3.Connection, path: Path, tables: set[str]) -> dict[str, list[float]]:
    columns = _columns(con, "NVTX_EVENTS")
    if not {"start", "end", "text"} <= columns:
        raise InputError(f"{path}: NVTX_EVENTS lacks start/end/text")
    strings = "textId" in columns and "StringIds" in tables
    text = "COALESCE(n.text, s.value)" if strings else "n.text"
    join = "LEFT JOIN StringIds s ON s.id = n.textId" if strings else ""
    steps: dict[str, list[float]] = defaultdict(list)
    query = f"SELECT n.rowid, {text}, n.start, n.[end] FROM NVTX_EVENTS n {join}"
    for rowid, name, start, end in con.execute(query):
        if end is None or not name or not STEP_RE.match(str(name)):
            continue  # an open range (no end yet) or not a vLLM step
        seconds = _duration_s(start, end, path, "NVTX_EVENTS", rowid)
        if seconds > 0:
            steps[str(name)].append(seconds)
    return steps
