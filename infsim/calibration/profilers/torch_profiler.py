"""Importer `torch-profiler`: Kineto Chrome traces → calibration rows.

Two kinds of rows come out of a trace:

* **ops** — each recognised CPU op (`torch_ops.classify`) is one sample of its canonical op
  and shape. With GPU kernels in the trace, a sample's time is the summed duration of the
  kernels launched beneath the op (joined through correlation ids, `kineto.py`); in a
  CPU-only trace (vLLM's CPU backend) it is the op's own duration. Samples are grouped per
  (op, dtype, shape, source op name) and the median is the row's `time_s`.
* **steps** — vLLM wraps each engine step in a `user_annotation` named
  `execute_context_<P>(<p tokens>)_generation_<D>(<d tokens>)`; its host duration is the
  step time for P prefill and D decode requests: op `step`, num_tokens = p + d,
  batch_size = P + D, variant = the annotation name (median per name).

Ops we do not model, recognised ops without shapes and kernels outside any recognised op
are skipped and counted in the notes. Nothing is imported from a file unless it yields
at least one row; every problem raises `InputError` naming the file.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from infsim.calibration.profilers import kineto
from infsim.calibration.profilers.torch_ops import Shaped, Unshaped, classify
from infsim.errors import InputError

STEP_RE = re.compile(r"^execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)")
MAX_STEP_COUNT = 10**9
"""Largest request or token count of a step annotation taken as a step row."""


def step_shape(name: str) -> tuple[int, int] | str | None:
    """(batch_size, num_tokens) of a vLLM step annotation `execute_context_P(p)_generation_
    D(d)`; None when `name` is not one; the reason (a string) when its counts are out of
    range (skipped and counted in the notes)."""
    match = STEP_RE.match(name)
    if match is None:
        return None
    groups = match.groups()
    if any(len(g) > 10 or not g.isascii() for g in groups):
        return "step annotation with out-of-range counts"
    prefill, prefill_tokens, decode, decode_tokens = map(int, groups)
    if max(prefill, prefill_tokens, decode, decode_tokens) > MAX_STEP_COUNT:
        return "step annotation with out-of-range counts"
    return prefill + decode, prefill_tokens + decode_tokens


PROFILER = "PyTorch profiler (Kineto Chrome trace)"


@dataclass
class _Tally:
    """Samples and skip counts of one or more traces."""

    samples: dict[tuple, list[float]] = field(default_factory=lambda: defaultdict(list))
    skipped: Counter = field(default_factory=Counter)
    unattributed_kernels: Counter = field(default_factory=Counter)
    num_kernels: int = 0
    num_steps: int = 0


def read_traces(paths: Iterable[Path]) -> tuple[pd.DataFrame, list[str], str | None]:
    """Rows (calibration columns + `source`, the file), notes, and the GPU name (None: CPU).

    Each file is grouped on its own (a row's median never mixes files); all files must
    come from the same device.
    """
    frames, notes = [], []
    devices: dict[str, Path] = {}
    for path in paths:
        trace = kineto.load(Path(path))
        device = "cpu (no kernels)"
        if trace.kernels:
            device = ", ".join(trace.device_names) or "GPU (no deviceProperties)"
        devices.setdefault(device, trace.path)
        if len(devices) > 1:
            other = next(d for d in devices if d != device)
            raise InputError(
                f"{trace.path}: device {device!r} differs from {other!r} in "
                f"{devices[other]}; import one device per calibration"
            )
        tally = _Tally()
        _collect(trace, tally)
        if not tally.samples:
            raise InputError(_nothing_usable(trace, tally))
        frames.append(_frame(tally).assign(source=str(trace.path)))
        notes += [f"{trace.path.name}: {note}" for note in _notes(tally)]
    device = next(iter(devices), None)
    gpu = None if device is None or device.startswith("cpu") else device
    return pd.concat(frames, ignore_index=True), notes, gpu


def _collect(trace: kineto.Trace, tally: _Tally) -> None:
    claims = _claims(trace, tally)
    if trace.kernels:
        _kernel_samples(trace, claims, tally)
    else:
        for index, result in claims.items():
            _add(tally, result, trace.host[index].name, trace.host[index].dur_ns)
    for event in trace.host:
        shape = step_shape(event.name) if event.cat == "user_annotation" else None
        if isinstance(shape, str):
            tally.skipped[f"{event.name[:60]}: {shape}"] += 1
        elif shape is not None and event.dur_ns > 0:
            batch_size, num_tokens = shape
            key = ("step", None, (("batch_size", batch_size), ("num_tokens", num_tokens)),
                   event.name)  # fmt: skip
            tally.samples[key].append(event.dur_ns * 1e-9)
            tally.num_steps += 1


def _claims(trace: kineto.Trace, tally: _Tally) -> dict[int, Shaped]:
    """Outermost recognised op per subtree → its mapping; counts the unusable ones."""
    claims: dict[int, Shaped] = {}
    claimed: set[int] = set()  # recognised ops, shaped or not
    for i, event in enumerate(trace.host):
        if event.cat not in ("cpu_op", "user_annotation"):
            continue
        result = classify(event.name, event.args, trace.world_size)
        if result is None:
            continue
        if any(p in claimed for p in trace.chain(trace.parent[i])):
            continue  # inside an op that already accounts for it
        claimed.add(i)
        if isinstance(result, Unshaped):
            tally.skipped[f"{event.name}: {result.reason}"] += 1
        else:
            claims[i] = result
    return claims


def _kernel_samples(trace: kineto.Trace, claims: dict[int, Shaped], tally: _Tally) -> None:
    time_ns: dict[int, int] = defaultdict(int)
    for kernel in trace.kernels:
        tally.num_kernels += 1
        launch = kineto.launch_index(trace, kernel)
        owner = next((i for i in trace.chain(launch) if i in claims), None)
        if owner is None:
            inner = next(
                (trace.host[i].name for i in trace.chain(launch) if trace.host[i].cat == "cpu_op"),
                "<no cpu op>",
            )
            tally.unattributed_kernels[inner] += 1
        else:
            time_ns[owner] += kernel.dur_ns
    for index, result in claims.items():
        if time_ns.get(index, 0) > 0:
            _add(tally, result, trace.host[index].name, time_ns[index])
        else:
            tally.skipped[f"{trace.host[index].name}: launched no kernel"] += 1


def _add(tally: _Tally, result: Shaped, name: str, dur_ns: int) -> None:
    if dur_ns <= 0:
        tally.skipped[f"{name}: zero duration"] += 1
        return
    tally.samples[(result.op, result.dtype, result.shape, name)].append(dur_ns * 1e-9)


def _frame(tally: _Tally) -> pd.DataFrame:
    rows = []
    for (op, dtype, shape, variant), times in sorted(
        tally.samples.items(), key=lambda kv: (kv[0][0], kv[0][3], kv[0][2], str(kv[0][1]))
    ):
        row = {"op": op, "dtype": dtype, "variant": variant, **dict(shape)}
        row["time_s"] = float(np.median(times))
        rows.append(row)
    return pd.DataFrame(rows)


def _notes(tally: _Tally) -> list[str]:
    num_samples = sum(map(len, tally.samples.values()))
    notes = [
        f"{num_samples} samples ({tally.num_steps} vLLM step annotations) grouped per "
        "(op, dtype, shape, source op); time_s is the median. GPU traces: summed kernel "
        "time under the op; CPU-only traces: the op's own duration; steps: host duration of "
        "the execute_context_… annotation.",
    ]
    if tally.skipped:
        top = ", ".join(f"{name} ×{n}" for name, n in tally.skipped.most_common(12))
        notes.append(f"skipped {sum(tally.skipped.values())} ops: {top}")
    if tally.unattributed_kernels:
        n = sum(tally.unattributed_kernels.values())
        top = ", ".join(f"{k} ×{c}" for k, c in tally.unattributed_kernels.most_common(8))
        notes.append(f"{n} of {tally.num_kernels} kernels outside any modelled op: {top}")
    return notes


def _nothing_usable(trace: kineto.Trace, tally: _Tally) -> str:
    hint = ""
    if not any("Input Dims" in e.args for e in trace.host if e.cat == "cpu_op"):
        hint = " (the trace has no 'Input Dims': profile with record_shapes=True)"
    skipped = ", ".join(f"{k} ×{n}" for k, n in tally.skipped.most_common(5))
    return (
        f"{trace.path}: no usable events: no recognised op with shapes and no vLLM "
        f"execute_context_… step annotation{hint}" + (f"; skipped: {skipped}" if skipped else "")
    )
