"""nccl-tests results → collective rows: APEX+ CSVs and raw `*_perf` stdout.

APEX+ CSV (`profile/comm/<GPU>/<collective>.csv`; the file name is the collective):

    gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)

message_bytes = size × unit (KiB here; the unit is read from the header), num_devices =
num_nodes × num_gpus_per_node, time from the header's unit. Rows of size 0 (messages under
1 KiB, rounded down by APEX+) have no byte count and are dropped. variant = "nccl-tests".

Raw stdout of `all_reduce_perf -b 8 -e 128M -f 2 -g 8` and friends (any file that is not
`.csv`): the collective comes from the "Collective test starting: <name>_perf" line or the
file name, num_devices from the "#  Rank" lines (else nThread × nGpus), the device from the
rank lines' GPU name, columns from the "size count type …" header. Each data row gives two
measurements, out-of-place and in-place (variant "nccl-tests/out_of_place" and
"nccl-tests/in_place"); time is in µs per the format's units line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from infsim.calibration.importers import ImportOptions, ImportResult, importers
from infsim.calibration.importers._common import (
    SIZE_UNITS,
    SOURCE,
    TIME_UNITS,
    device_name,
    dtype_column,
    file_provenance,
    numbers,
    one_device,
    read_csv,
    text_column,
    unit_column,
)
from infsim.errors import InputError
from infsim.textio import read_text

VARIANT = "nccl-tests"
MAX_DEVICES = 1_000_000
COLLECTIVES = {
    "all_reduce": "all_reduce",
    "allreduce": "all_reduce",
    "all_gather": "all_gather",
    "allgather": "all_gather",
    "reduce_scatter": "reduce_scatter",
    "reducescatter": "reduce_scatter",
    "alltoall": "all_to_all",
    "all_to_all": "all_to_all",
    "sendrecv": "send_recv",
    "send_recv": "send_recv",
}
"""nccl-tests / APEX+ collective names → table ops."""


def _collective(name: str, path: Path) -> str:
    key = name.lower().removesuffix("_perf")
    if key not in COLLECTIVES:
        raise InputError(
            f"{path}: unknown collective {name!r} (from the file name or header); "
            f"known: {', '.join(COLLECTIVES)}"
        )
    return COLLECTIVES[key]


def _read_apex(path: Path) -> tuple[pd.DataFrame, str | None]:
    raw = read_csv(path, ("gpu", "num_nodes", "num_gpus_per_node", "dtype"))
    time_col, to_s = unit_column(raw, path, ("time", "latency"), TIME_UNITS)
    size_col, to_bytes = unit_column(raw, path, ("size",), SIZE_UNITS)
    gpus = sorted(set(text_column(raw, "gpu", path)))
    if len(gpus) > 1:
        raise InputError(f"{path}: mixed devices in one file: {gpus}")
    size_bytes = numbers(raw, size_col, path) * to_bytes
    nodes = numbers(raw, "num_nodes", path, positive=True, integral=True, hi=MAX_DEVICES)
    per_node = numbers(raw, "num_gpus_per_node", path, positive=True, integral=True,
                       hi=MAX_DEVICES)  # fmt: skip
    devices = nodes * per_node
    frame = pd.DataFrame(
        {"op": _collective(path.stem, path), "dtype": dtype_column(raw["dtype"], path),
         "message_bytes": size_bytes, "num_devices": devices, "variant": VARIANT,
         "time_s": numbers(raw, time_col, path) * to_s}
    )  # fmt: skip
    return frame[frame["message_bytes"] > 0], device_name(gpus[0])


_HEADER = re.compile(r"^#\s+size\s+count\s+type\b")
_RANK = re.compile(r"^#\s+Rank\s+\d+.*?device\s+\d+\s+\[[^\]]*\]\s+(.+?)\s*$")
_THREADS = re.compile(r"nThread\s+([0-9]{1,6})\s+nGpus\s+([0-9]{1,6})\b")
_NAME = re.compile(r"Collective test starting:\s*(\S+)")


def _read_stdout(path: Path) -> tuple[pd.DataFrame, str | None]:
    lines = read_text(path, "nccl-tests output").splitlines()
    header = next((line for line in lines if _HEADER.match(line)), None)
    if header is None:
        raise InputError(f"{path}: not nccl-tests output (no '#  size  count  type …' header line)")
    columns = header.lstrip("#").split()
    if columns[:3] != ["size", "count", "type"]:
        raise InputError(f"{path}: the nccl-tests header starts {' '.join(columns[:3])!r}, "
                         "expected 'size count type'")  # fmt: skip
    name = next((m.group(1) for m in map(_NAME.search, lines) if m), path.stem)
    op = _collective(name, path)
    ranks = [m.group(1) for m in map(_RANK.match, lines) if m]
    threads = next((m for m in map(_THREADS.search, lines) if m), None)
    num_devices = len(ranks) or (int(threads[1]) * int(threads[2]) if threads else 0)
    if not num_devices:
        raise InputError(f"{path}: cannot tell the number of GPUs (no '#  Rank' or nGpus line)")
    rows = [line.split() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    rows = [r for r in rows if len(r) == len(columns) and r[0].isascii() and r[0].isdigit()]
    if not rows:
        raise InputError(f"{path}: no result rows under the nccl-tests header")
    table = pd.DataFrame(rows)
    times = [i for i, c in enumerate(columns) if c == "time"]
    if not times:
        raise InputError(f"{path}: the nccl-tests header has no 'time' column: {' '.join(columns)}")
    frames = []
    for index, variant in zip(times, ("out_of_place", "in_place"), strict=False):
        frames.append(pd.DataFrame(
            {"op": op, "dtype": dtype_column(table[columns.index("type")], path),
             "message_bytes": numbers(table, 0, path), "num_devices": num_devices,
             "variant": f"{VARIANT}/{variant}",
             "time_s": numbers(table, index, path) * TIME_UNITS["us"]}
        ))  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    devices = {device_name(r) for r in ranks}
    return frame[frame["message_bytes"] > 0], devices.pop() if len(devices) == 1 else None


@importers.register("nccl-tests")
def import_nccl_tests(paths: list[Path], options: ImportOptions) -> ImportResult:
    files = [f for p in paths for f in (sorted(p.glob("*.csv")) if p.is_dir() else [p])]
    frames, devices = [], {}
    for path in files:
        frame, device = _read_apex(path) if path.suffix == ".csv" else _read_stdout(path)
        frames.append(frame.assign(**{SOURCE: str(path)}))
        devices[path] = device
    device = one_device(devices, options.device)
    frame = pd.concat(frames, ignore_index=True)
    meta: dict[str, object] = {
        "device": device,
        "engine": options.engine or "nccl",
        "engine_version": options.engine_version or "",
        "source": "nccl-tests (github.com/NVIDIA/nccl-tests); APEX+ profile/comm tables",
        "profiler": "nccl-tests *_perf (CUDA events, average over iterations)",
        "licence": "MIT (APEX+ data)",
        "notes": ("APEX+ rows of size 0 KiB (messages under 1 KiB) dropped",),
    }
    provenance = file_provenance(files, frames)
    return ImportResult(frame=frame, meta=meta, provenance=provenance)
