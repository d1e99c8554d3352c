"""`collect()`: time a model's operations on one torch device → calibration rows + metadata.

    python -m infsim.calibration.harness --model PATH_OR_NAME --device cpu \\
        --out calibration/cpu-host-torch [--quick] [--dtype bfloat16] [--tp 1] [--threads 1]

On the CPU torch runs with one thread by default, like the vLLM CPU engine core (see
shared/live/README.md); `--threads 0` keeps torch's default. All-reduce is measured only
when torch.distributed is initialised with more than one rank (launch with torchrun).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from infsim.calibration.harness import ops
from infsim.calibration.harness.plan import Plan, cases
from infsim.catalog import precision as prec
from infsim.catalog.model import load_model
from infsim.catalog.model_spec import ModelSpec
from infsim.cost import table
from infsim.errors import InputError


def collect(
    model: ModelSpec, device: str, *, plan: Plan | None = None, dtype: str = "auto", tp: int = 1
) -> tuple[pd.DataFrame, table.CalibrationMeta]:
    """Measure `model`'s ops on `device` ("cpu", "cuda", "cuda:1"); rows in OPS_SCHEMA columns.

    `dtype` "auto" is the model's dtype; a dtype the device cannot run (no bfloat16 on
    this torch build) falls back to float32, and the notes say so.
    """
    torch = _import_torch()
    plan = plan or Plan()
    target = torch.device(device)
    dtype_name, notes = _pick_dtype(torch, prec.resolve(dtype, model.dtype), target)
    world = _world_size(torch)
    torch_dtype = getattr(torch, dtype_name)
    timer = ops.make_timer(target, plan)
    rows = []
    with torch.inference_mode():
        for case in cases(model, plan, tp=tp, num_devices=world):
            time_s = timer(ops.closure(case, torch_dtype, target))
            row_dtype = "float32" if case.op == "sampler" else dtype_name
            rows.append(
                {
                    "op": case.op,
                    "dtype": row_dtype,
                    "variant": case.variant,
                    "tp": tp,
                    **case.dims(),
                    "time_s": time_s,
                }
            )
    notes += _notes(torch, target, world)
    meta = table.CalibrationMeta(
        name=f"{_hardware_name(torch, target)}-torch",
        device=_hardware_name(torch, target),
        engine="torch",
        engine_version=torch.__version__,
        source=f"infsim harness on {_machine(torch, target)}",
        profiler="CUDA events" if target.type == "cuda" else "time.perf_counter_ns",
        collected=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        importer="infsim.calibration.harness.collect",
        notes=tuple(notes),
    )
    return pd.DataFrame(rows), meta


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InputError(
            "the calibration harness needs PyTorch: pip install 'infsim[calibrate]' "
            "(or a torch build for your accelerator)"
        ) from None
    return torch


def _pick_dtype(torch: Any, wanted: str, device: Any) -> tuple[str, list[str]]:
    if wanted not in ops.TORCH_DTYPES:
        raise InputError(
            f"harness dtype must be one of {', '.join(ops.TORCH_DTYPES)}, got "
            f"{wanted!r} (quantised GEMMs are not measured)"
        )
    try:
        x = torch.ones(4, 4, dtype=getattr(torch, wanted), device=device)
        torch.nn.functional.linear(x, x)
    except (RuntimeError, TypeError) as err:
        return "float32", [f"{wanted} is not supported here ({err}); measured float32"]
    return wanted, []


def _world_size(torch: Any) -> int:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def _hardware_name(torch: Any, device: Any) -> str:
    if device.type == "cpu":
        return "cpu-host"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return "-".join(name.lower().replace("nvidia", "").split())


def _machine(torch: Any, device: Any) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{_cpu_model()} ({platform.machine()}, {torch.get_num_threads()} torch thread(s))"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _notes(torch: Any, device: Any, world: int) -> list[str]:
    notes = [
        "Stock torch kernels, not the serving engine's: attention is dense "
        "scaled_dot_product_attention (engines use paged KV-cache kernels), GEMMs are "
        "F.linear (vLLM CPU uses prepacked oneDNN), rms_norm is unfused.",
        "time_s is the median of the repeats after warm-up; shapes are per rank at the "
        "given tp; sampler logits are float32.",
    ]
    if device.type == "cpu":
        notes.append(
            f"CPU: torch threads = {torch.get_num_threads()}, ISA "
            f"{torch.backends.cpu.get_cpu_capability()}"
        )
    if world == 1:
        notes.append("all_reduce not measured: one device (torch.distributed not initialised)")
    return notes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infsim.calibration.harness",
        description="Measure a model's operations on one device.",
    )
    p.add_argument("--model", required=True, help="catalog name or HF config.json path")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1")
    p.add_argument("--out", required=True, type=Path, help="calibration directory to write")
    p.add_argument("--quick", action="store_true", help="small grid (seconds)")
    p.add_argument("--dtype", default="auto", help="bfloat16, float16, float32 or auto")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel degree of the shapes")
    p.add_argument("--threads", type=int, default=1, help="CPU torch threads (0: default)")
    p.add_argument("--name", help="calibration name (default: the --out directory name)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry; `infsim calibrate collect` wraps it. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        model = load_model(args.model)
        torch = _import_torch()
        if args.device.startswith("cpu") and args.threads > 0:
            torch.set_num_threads(args.threads)
        plan = Plan.quick() if args.quick else Plan()
        frame, meta = collect(model, args.device, plan=plan, dtype=args.dtype, tp=args.tp)
        name = args.name or args.out.resolve().name
        arrow = table.to_table(frame, source=f"harness run for {model.name}")
        meta = meta.model_copy(
            update={
                "name": name,
                "importer": "python -m infsim.calibration.harness " + shlex.join(argv),
                "provenance": (_provenance(model, arrow.num_rows),),
            }
        )
        table.write(args.out, arrow, meta)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    print(f"wrote {arrow.num_rows} rows to {args.out}")  # noqa: T201
    return 0


def _provenance(model: ModelSpec, rows: int) -> table.Provenance:
    path = Path(model.source)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return table.Provenance(path=model.source or model.name, rows=rows, sha256=digest)
