"""What `infsim plan` compares: candidates (GPU × tensor parallelism × weight precision),
the SLO, the target load and the calibration each candidate is priced with.

Defaults: every catalog GPU (not the CPU host), tensor parallelism 1, 2, 4 and 8, and the
scenario's own weight precision. A candidate on which the model cannot run (weights do not
fit, TP does not divide the heads, no NVLink for that TP, …) is skipped with the
resolver's reason in one line, shown in the output and kept in plan.parquet.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infsim.catalog import precision as prec
from infsim.catalog.hardware import gpu_names, load_gpu
from infsim.cost.store import AUTO, load_rows, resolve_calibration
from infsim.errors import InputError
from infsim.sweep.points import PointContext
from infsim.sweep.search import SLOTarget

DEFAULT_TENSOR_PARALLEL = (1, 2, 4, 8)
MAX_TENSOR_PARALLEL = 64
RATE_SCALING = ("time_scale", "rate_scale", "target_rate_per_s")


@dataclass(frozen=True, order=True)
class Candidate:
    """One deployment shape to size: a catalog GPU name, TP and a canonical precision."""

    gpu: str
    tensor_parallel: int
    weight_precision: str
    calibration: str | None = None  # override of the scenario's, or None = keep it

    def label(self) -> str:
        return f"{self.gpu} TP{self.tensor_parallel} {self.weight_precision}"

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hardware.gpu": self.gpu,
            "deployment.tensor_parallel": self.tensor_parallel,
            "deployment.weight_precision": self.weight_precision,
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out


def _split(values: Sequence[str]) -> list[str]:
    """Repeated options and comma-separated lists alike: ("a,b", "c") → [a, b, c]."""
    return [v.strip() for item in values for v in str(item).split(",") if v.strip()]


def gpu_list(names: Sequence[str]) -> list[str]:
    """Catalog names of `--gpu` values (aliases accepted), or every catalog GPU."""
    if not names:
        return [n for n in gpu_names() if load_gpu(n).vendor.lower() != "cpu"]
    out = []
    for name in _split(names):
        try:
            out.append(load_gpu(name).name)
        except InputError as err:
            raise InputError(f"--gpu {name}: {err}") from None
    return list(dict.fromkeys(out))


def precision_list(names: Sequence[str], model_dtype: str) -> list[str]:
    out = []
    for name in _split(names):
        try:
            out.append(prec.resolve(name, model_dtype))
        except InputError as err:
            raise InputError(f"--weight-precision {name}: {err}") from None
    return list(dict.fromkeys(out))


def tp_list(values: Sequence[str | int]) -> list[int]:
    """`--tensor-parallel` values (repeatable or comma-separated), or 1, 2, 4 and 8."""
    if not values:
        return list(DEFAULT_TENSOR_PARALLEL)
    out = set()
    for text in _split([str(v) for v in values]):
        if not text.isdigit() or not 1 <= int(text) <= MAX_TENSOR_PARALLEL:
            raise InputError(
                f"--tensor-parallel {text[:40]!r}: not allowed; a whole number of GPUs from 1 "
                f"to {MAX_TENSOR_PARALLEL} (repeat the option or separate values by commas)"
            )
        out.add(int(text))
    return sorted(out)


def expand(gpus: list[str], tps: list[int], precisions: list[str]) -> list[Candidate]:
    """Every combination, in GPU, TP, precision order (deterministic)."""
    return [Candidate(g, t, p) for g in gpus for t in tps for p in precisions]


def slo_target(
    scenario_slo: Any,
    ttft_p99: float | None,
    tpot_p99: float | None,
    e2e_p99: float | None,
    min_attainment: float | None = None,
) -> tuple[SLOTarget, str]:
    """The plan's SLO, and where it came from (for the output). Each p99 limit comes from
    its option, else from the scenario's `slo:` threshold of that metric, read as a p99
    limit. `--min-attainment` alone is `infsim capacity`'s reading instead: that share of
    requests must meet all of the scenario's `slo:` thresholds (no p99 limits from them).
    A plan without any limit is refused: "meets the SLO" would mean nothing."""
    limits: dict[str, float] = {}
    origin = []
    options_only = min_attainment is not None and all(
        v is None for v in (ttft_p99, tpot_p99, e2e_p99)
    )
    for name, option, given in (
        ("ttft", "--ttft-p99", ttft_p99),
        ("tpot", "--tpot-p99", tpot_p99),
        ("e2e", "--e2e-p99", e2e_p99),
    ):
        from_scenario = None if options_only else getattr(scenario_slo, f"{name}_s", None)
        if given is not None:
            limits[f"{name}_p99_s"] = given
            origin.append(f"p99 {name.upper()} ≤ {given:g} s ({option})")
        elif from_scenario is not None:
            limits[f"{name}_p99_s"] = from_scenario
            origin.append(f"p99 {name.upper()} ≤ {from_scenario:g} s (slo.{name}_s)")
    if min_attainment is not None:
        limits["min_attainment"] = min_attainment
        origin.append(f"≥ {min_attainment:.1%} of requests meet every slo: threshold "
                      "(--min-attainment)")  # fmt: skip
    if not limits:
        raise InputError(
            "infsim plan: no SLO: give --ttft-p99, --tpot-p99 or --e2e-p99 (seconds), or "
            "set slo.ttft_s / slo.tpot_s / slo.e2e_s in the scenario (each read as a p99 "
            "limit)"
        )
    return SLOTarget(**limits), " and ".join(origin)


def check_base(ctx: PointContext) -> None:
    """Refuse scenarios whose replica count is not one number to size."""
    dep = ctx.base_raw.get("deployment") or {}
    for section, why in (
        ("pools", "each pool has its own GPU and replicas"),
        ("disaggregation", "prefill and decode pools are sized separately"),
    ):
        if dep.get(section) is not None:
            raise InputError(
                f"{ctx.source}: deployment.{section}: infsim plan sizes one pool of identical "
                f"replicas, and {why}; remove deployment.{section} (plan the pools one at a "
                "time) or use infsim sweep"
            )
    if ctx.base_raw.get("autoscaling") is not None:
        raise InputError(
            f"{ctx.source}: autoscaling: infsim plan sizes a fixed replica count; remove "
            "autoscaling: (the plan's replica count is what min_replicas should be)"
        )


def with_target_rate(ctx: PointContext, rate_per_s: float) -> tuple[PointContext, list[str]]:
    """The base scenario with `workload.target_rate_per_s` = `rate_per_s` and its own
    rate scaling removed; notes naming what was replaced (never silently)."""
    raw = copy.deepcopy(ctx.base_raw)
    workload = raw.setdefault("workload", {})
    notes = [
        f"workload.{key}: {workload[key]!r} replaced by target_rate_per_s {rate_per_s:g}"
        for key in RATE_SCALING
        if workload.get(key) is not None
        and not (key == RATE_SCALING[2] and workload[key] == rate_per_s)
    ]
    for key in RATE_SCALING:
        workload.pop(key, None)
    workload["target_rate_per_s"] = rate_per_s
    return PointContext(raw, ctx.base_dir, ctx.source, skip_infeasible=True), notes


def scenario_rate_per_s(ctx: PointContext) -> float:
    """The mean arrival rate of the scenario's workload as it stands (its own rate_scale,
    time_scale or target_rate_per_s applied): the plan's target load without --target-rate."""
    from infsim.api import prepare
    from infsim.scenario.load import validate_scenario
    from infsim.workload.spec import mean_rate_per_s

    scenario = validate_scenario(ctx.base_raw, ctx.source)
    _, trace = prepare(scenario, ctx.base_dir, ctx.source)
    return mean_rate_per_s(trace)


def calibration_policy(
    ctx: PointContext, candidates: list[Candidate]
) -> tuple[list[Candidate], str]:
    """Which calibration each candidate is priced with, and a line saying so.

    `calibration: auto` and `roofline` apply as they are. A named table measured on one
    GPU prices only candidates on that GPU: when the candidates span other GPUs, those get
    `calibration: auto` (their own GPU's built-in table, or the roofline with a warning),
    since comparing GPUs priced by one GPU's table would be wrong."""
    name = str(ctx.base_raw.get("calibration", "roofline"))
    if name in (AUTO, "roofline"):
        return candidates, f"calibration: {name} (the scenario's)"
    try:
        _, meta = load_rows(resolve_calibration(name, ctx.base_dir))
        device = load_gpu(meta.device).name
    except InputError as err:
        raise InputError(f"{ctx.source}: calibration: {err}") from None
    others = sorted({c.gpu for c in candidates if c.gpu != device})
    if not others:
        return candidates, f"calibration: {name} (the scenario's, measured on {device})"
    out = [c if c.gpu == device else _with_calibration(c, AUTO) for c in candidates]
    line = (
        f"calibration: {name} (the scenario's, measured on {device}) for {device} candidates; "
        f"calibration: auto for {', '.join(others)} (each GPU's built-in table, or the "
        "roofline with a warning where it has none)"
    )
    return out, line


def _with_calibration(c: Candidate, calibration: str) -> Candidate:
    return Candidate(c.gpu, c.tensor_parallel, c.weight_precision, calibration)
