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
import json
import re
import sqlite3
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

from infsim.calibration.profilers.torch_profiler import STEP_RE
from infsim.errors import InputError

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


def read_kern_sum(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """`nsys stats --report cuda_gpu_kern_sum --format csv` → rows and notes."""
    header, records = _csv_records(path)
    unit, time_col = _time_column(path, header)
    medians: dict[str, float] = {}
    counts: dict[str, int] = {}
    for i, record in enumerate(records, start=2):
        try:
            name = record["Name"]
            medians[name] = _number(record[time_col]) * UNIT_S[unit]
            counts[name] = int(_number(record.get("Instances") or "1"))
        except (KeyError, ValueError):
            raise InputError(f"{path}: row {i}: bad number in {record}") from None
    if not medians:
        raise InputError(f"{path}: the kernel summary has no rows")
    return _rows(path, medians, counts, steps={})


def read_sqlite(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """`nsys export --type sqlite` → rows from kernel and NVTX step tables, and notes."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as err:
        raise InputError(f"{path}: not an Nsight Systems SQLite export ({err})") from None
    try:
        if "CUPTI_ACTIVITY_KIND_KERNEL" not in tables:
            raise InputError(
                f"{path}: no CUPTI_ACTIVITY_KIND_KERNEL table (was the GPU "
                "traced? nsys profile --trace=cuda)"
            )
        durations = _kernel_durations(con, path)
        steps = _nvtx_steps(con) if "NVTX_EVENTS" in tables else {}
        devices = {
            r[0] for r in con.execute("SELECT DISTINCT deviceId FROM CUPTI_ACTIVITY_KIND_KERNEL")
        }
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
        prefill, prefill_tokens, decode, decode_tokens = map(int, STEP_RE.match(name).groups())
        rows.append(
            {
                "op": "step",
                "variant": name,
                "time_s": statistics.median(times),
                "num_tokens": prefill_tokens + decode_tokens,
                "batch_size": prefill + decode,
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
    try:
        data = json.loads(sidecar.read_text())
        tokens = data["num_tokens"]
        if not isinstance(tokens, int) or tokens < 1 or set(data) != {"num_tokens"}:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InputError(f'{sidecar}: expected {{"num_tokens": <positive int>}}') from None
    return {"num_tokens": tokens}


def _csv_records(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the CSV ({err})") from None
    # nsys prints "Generating SQLite file…" / "Processing […]" before the header.
    start = next((i for i, line in enumerate(lines) if "Name" in line and "(" in line), None)
    if start is None:
        raise InputError(
            f"{path}: no cuda_gpu_kern_sum header (a 'Name' column and "
            "'Total Time (ns)'-style columns) found"
        )
    reader = csv.DictReader(io.StringIO("\n".join(lines[start:])))
    return list(reader.fieldnames or []), [r for r in reader if any(r.values())]


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


def _number(text: str) -> float:
    return float(str(text).replace(",", "").strip())


def _kernel_durations(con: sqlite3.Connection, path: Path) -> dict[str, list[float]]:
    columns = {r[1] for r in con.execute("PRAGMA table_info(CUPTI_ACTIVITY_KIND_KERNEL)")}
    name_col = next((c for c in ("demangledName", "shortName") if c in columns), None)
    if name_col is None or not {"start", "end"} <= columns:
        raise InputError(f"{path}: CUPTI_ACTIVITY_KIND_KERNEL lacks start/end/demangledName")
    query = (
        f"SELECT s.value, k.[end] - k.start FROM CUPTI_ACTIVITY_KIND_KERNEL k "
        f"JOIN StringIds s ON s.id = k.{name_col}"
    )
    durations: dict[str, list[float]] = defaultdict(list)
    for name, dur_ns in con.execute(query):
        durations[str(name)].append(dur_ns * 1e-9)
    if not durations:
        raise InputError(f"{path}: CUPTI_ACTIVITY_KIND_KERNEL is empty")
    return durations


def _nvtx_steps(con: sqlite3.Connection) -> dict[str, list[float]]:
    columns = {r[1] for r in con.execute("PRAGMA table_info(NVTX_EVENTS)")}
    text = "COALESCE(n.text, s.value)" if "textId" in columns else "n.text"
    join = "LEFT JOIN StringIds s ON s.id = n.textId" if "textId" in columns else ""
    steps: dict[str, list[float]] = defaultdict(list)
    query = f"SELECT {text}, n.[end] - n.start FROM NVTX_EVENTS n {join} WHERE n.[end] > n.start"
    for name, dur_ns in con.execute(query):
        if name and STEP_RE.match(str(name)):
            steps[str(name)].append(dur_ns * 1e-9)
    return steps
