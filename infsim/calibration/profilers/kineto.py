"""Read a PyTorch profiler (Kineto) Chrome trace and join GPU kernels to their CPU ops.

A trace (`.json` or `.json.gz`, FORMATS.md §4.1) is one object whose `traceEvents` list
mixes host and device events. The host side is a forest per thread, nested by time:

    thread (pid, tid)   |--- user_annotation execute_context_1(10)_generation_4(4) ------|
                          |-- cpu_op aten::linear --|   |-- cpu_op aten::layer_norm --|
                            |-- cpu_op aten::addmm --|
                              |cudaLaunchKernel|         (cuda_runtime, args.correlation)
    device (pid = gpu)                 |== kernel sm90_gemm ==|   (args.correlation)

A kernel is joined to its launch through the correlation id (`args.correlation`, or the id
of the `ac2g` flow event that ends on the kernel), and the launch to its CPU ops by time
containment on the launching thread. Containment works for both Kineto generations: in
newer traces kernels also carry the CPU op's `External id`, in older ones (the HTA A100
samples) `External id` is just the correlation id again and cannot name the op.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infsim.errors import InputError, shown

HOST_CATEGORIES = frozenset({"cpu_op", "user_annotation", "cuda_runtime", "cuda_driver"})
LAUNCH_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver"})


@dataclass(frozen=True, slots=True)
class Event:
    """One complete ("X") event; times in integer nanoseconds to make nesting exact."""

    name: str
    cat: str
    pid: Any
    tid: Any
    start_ns: int
    dur_ns: int
    args: dict[str, Any]

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.dur_ns


@dataclass
class Trace:
    """The parts of one trace file the importer uses.

    `host` holds cpu_op, user_annotation and launch events; `parent[i]` is the index in
    `host` of the innermost host event enclosing `host[i]` on the same thread (or None).
    """

    path: Path
    device_names: tuple[str, ...]
    world_size: int | None
    host: list[Event]
    parent: list[int | None]
    kernels: list[Event]
    launch_by_correlation: dict[int, int] = field(default_factory=dict)
    """Correlation id → index into `host` of the runtime call that launched it."""

    def chain(self, index: int | None) -> list[int]:
        """`index` and its enclosing host events, innermost first."""
        out = []
        while index is not None:
            out.append(index)
            index = self.parent[index]
        return out


def load(path: Path) -> Trace:
    """Parse one trace file; `InputError` naming the file for anything unreadable."""
    raw = _read_json(path)
    events = raw.get("traceEvents") if isinstance(raw, dict) else None
    if not isinstance(events, list):
        raise InputError(
            f"{path}: not a PyTorch profiler trace (no 'traceEvents' list at the top level)"
        )
    host: list[Event] = []
    kernels: list[Event] = []
    flow_ends: dict[tuple[Any, Any, int], int] = {}
    for index, item in enumerate(events):
        if not isinstance(item, dict):
            continue
        where = f"{path}: traceEvents[{index}]"
        if item.get("ph") == "f" and item.get("cat") == "ac2g" and "id" in item:
            correlation = _correlation(item["id"])
            if correlation is not None:
                key = (_thread(item, "pid", where), _thread(item, "tid", where))
                flow_ends[(*key, _ns(item.get("ts"), where, "ts"))] = correlation
            continue
        event = _event(item, where)
        if event is None:
            continue
        if event.cat == "kernel":
            kernels.append(event)
        elif event.cat in HOST_CATEGORIES:
            host.append(event)
    host.sort(key=lambda e: (str(e.pid), str(e.tid), e.start_ns, -e.dur_ns))
    trace = Trace(
        path=path,
        device_names=_device_names(raw),
        world_size=_world_size(raw),
        host=host,
        parent=_parents(host),
        kernels=kernels,
    )
    _index_launches(trace, flow_ends)
    _check_one_device(trace)
    return trace


def launch_index(trace: Trace, kernel: Event) -> int | None:
    """Index in `trace.host` of the runtime call that launched `kernel`, if known."""
    correlation = _correlation(kernel.args.get("correlation"))
    if correlation is None:
        return None
    return trace.launch_by_correlation.get(correlation)


def _correlation(value: Any) -> int | None:
    """A correlation id (an integer, as Kineto writes it); None for anything else: such a
    kernel or launch cannot be joined and is counted as outside any op."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _index_launches(trace: Trace, flow_ends: dict[tuple[Any, Any, int], int]) -> None:
    for i, event in enumerate(trace.host):
        correlation = _correlation(event.args.get("correlation"))
        if event.cat in LAUNCH_CATEGORIES and correlation is not None:
            trace.launch_by_correlation[correlation] = i
    # Kernels without args.correlation (rare) get it from the ac2g flow that ends on them.
    for k, kernel in enumerate(trace.kernels):
        if "correlation" not in kernel.args:
            flow_id = flow_ends.get((kernel.pid, kernel.tid, kernel.start_ns))
            if flow_id is not None:
                args = {**kernel.args, "correlation": flow_id}
                trace.kernels[k] = dataclasses.replace(kernel, args=args)


def _parents(host: list[Event]) -> list[int | None]:
    """Innermost enclosing event per thread; `host` is sorted by thread, start, -duration."""
    parent: list[int | None] = [None] * len(host)
    stack: list[int] = []
    thread = None
    for i, event in enumerate(host):
        if (event.pid, event.tid) != thread:
            thread, stack = (event.pid, event.tid), []
        while stack and host[stack[-1]].end_ns < event.end_ns:
            # Not contained: the top of the stack ended before this event does.
            stack.pop()
        if stack and host[stack[-1]].start_ns <= event.start_ns:
            parent[i] = stack[-1]
        stack.append(i)
    return parent


def _check_one_device(trace: Trace) -> None:
    devices = {repr(k.args.get("device", k.pid)) for k in trace.kernels}
    if len(devices) > 1:
        raise InputError(
            f"{trace.path}: kernels from {len(devices)} devices ({sorted(map(str, devices))}) "
            "in one trace; a calibration describes one device — profile one rank per file"
        )


MAX_TRACE_BYTES = 1 << 32
"""Largest decompressed trace read (4 GiB): a gzip bomb is refused, not unpacked."""
MAX_TS_US = 1e17
"""|ts| bound in microseconds (Kineto stamps are µs since the epoch, ~1.8e15 today)."""
MAX_DUR_US = 1e12
"""Longest event duration in microseconds (11.6 days)."""


def _read_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read the trace: {err.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: not a JSON Chrome trace: not UTF-8 text (byte 0x{data[err.start]:02x} at "
            f"offset {err.start})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not a JSON Chrome trace ({err})") from None
    except RecursionError:
        raise InputError(f"{path}: not a JSON Chrome trace (nested too deeply)") from None
    except ValueError as err:  # an integer beyond Python's digit limit
        raise InputError(f"{path}: unreadable value in the trace: {str(err)[:200]}") from None


def _gunzip(path: Path, data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            out = handle.read(MAX_TRACE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{path}: not a readable .gz file ({err})") from None
    if len(out) > MAX_TRACE_BYTES:
        raise InputError(f"{path}: decompresses to more than {MAX_TRACE_BYTES:,} bytes")
    return out


def _thread(item: dict[str, Any], key: str, where: str) -> Any:
    value = item.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | str | float)):
        raise InputError(f"{where}: {key} is {shown(value)}; expected a number or a string")
    return value


def _event(item: dict[str, Any], where: str) -> Event | None:
    if item.get("ph") != "X":
        return None
    args = item.get("args")
    return Event(
        name=str(item.get("name", "")),
        cat=str(item.get("cat", "")),
        pid=_thread(item, "pid", where),
        tid=_thread(item, "tid", where),
        start_ns=_ns(item.get("ts"), where, "ts"),
        dur_ns=_ns(item.get("dur", 0), where, "dur"),
        args=args if isinstance(args, dict) else {},
    )


def _ns(microseconds: Any, where: str, key: str) -> int:
    """Chrome-trace `ts`/`dur` are microseconds (floats in newer Kineto) → integer ns."""
    low, high = (0.0, MAX_DUR_US) if key == "dur" else (-MAX_TS_US, MAX_TS_US)
    if (
        isinstance(microseconds, bool)
        or not isinstance(microseconds, int | float)
        or not low <= microseconds <= high  # also refuses NaN
    ):
        raise InputError(
            f"{where}: {key} is {shown(microseconds)}; expected a number of microseconds "
            f"from {low:g} to {high:g}"
        )
    return round(float(microseconds) * 1000)


def _device_names(raw: dict[str, Any]) -> tuple[str, ...]:
    props = raw.get("deviceProperties")
    if not isinstance(props, list):
        return ()
    return tuple(sorted({str(p.get("name")) for p in props if isinstance(p, dict)}))


def _world_size(raw: dict[str, Any]) -> int | None:
    info = raw.get("distributedInfo")
    size = info.get("world_size") if isinstance(info, dict) else None
    return int(size) if isinstance(size, int) and size > 0 else None
