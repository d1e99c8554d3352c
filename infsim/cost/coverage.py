"""How much of a run's simulated step time the calibration table priced, and how.

Every cost-model lookup is answered one of four ways (`Curve.method`, `lookup.py`):

    measured      the table's rows for this exact shape and dtype
    interpolated  between measured shapes (method "interpolated-shape")
    scaled        another measured shape scaled by the roofline's ratio, or by the ratio
                  of bytes / FLOPs for attention heads ("scaled-shape"), or the rows of
                  a substituted dtype (float16 from bfloat16 rows at equal peak rates)
    roofline      nothing usable in the table: the analytic roofline

The calibrated cost model splits the seconds it prices by these kinds (see
`calibrated.py`); summary.json's `calibration` section gives their shares of the
simulated step time that ran, over all steps of all replicas. The per-step CPU overhead
is not a lookup: it is left out of `coverage` (whose four shares sum to 1) and reported
as `overhead_fraction` of all step time. The roofline cost model is 100 % roofline.

Runs collect the cost models they build through `collecting()` (a context variable: the
factory registers each model it builds while one is active), so the simulation wiring
needs no extra plumbing. While collecting, each lookup that fell back to the roofline is
reported once per process as a one-line warning on the `infsim.calibration` logger (to
stderr when logging is not configured).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infsim.cost.curves import Curve

KINDS = ("measured", "interpolated", "scaled", "roofline")
MEASURED, INTERPOLATED, SCALED, ROOFLINE = range(4)
OVERHEAD = 4  # index of the overhead seconds, after the kinds
NUM_KINDS = 5

logger = logging.getLogger("infsim.calibration")
_warned: set[str] = set()  # warning lines already given in this process


def kind_of(curve: Curve) -> int:
    """The coverage kind of a looked-up curve."""
    if curve.method == "roofline":
        return ROOFLINE
    if curve.method == "scaled-shape" or curve.note:
        return SCALED
    if curve.method == "interpolated-shape":
        return INTERPOLATED
    return MEASURED


@dataclass
class Collector:
    """The cost models built during one run, with their calibration's name."""

    models: list[tuple[str, Any]] = field(default_factory=list)
    choices: list[dict[str, Any]] = field(default_factory=list)  # calibration: auto picks

    @property
    def name(self) -> str:
        names = list(dict.fromkeys(name for name, _ in self.models))
        return ", ".join(names) if names else "roofline"

    def section(
        self, decode_runs: dict[int, tuple[float, float]], step_time_s: float
    ) -> dict[str, Any]:
        """summary.json's `calibration` section. `decode_runs`: width → (steps, seconds)
        of the fast-forwarded decode runs that ran (all replicas); `step_time_s`: the
        timeline's total step time, which prices what no calibrated model tallied
        (roofline models next to calibrated ones) as roofline."""
        calibrated = [m for _, m in self.models if hasattr(m, "coverage_s")]
        seconds = np.zeros(NUM_KINDS)
        for model, runs in zip(calibrated, _share_runs(calibrated, decode_runs), strict=True):
            seconds += model.coverage_s(runs)
        if len(calibrated) < len(self.models):
            seconds[ROOFLINE] += max(step_time_s - float(seconds.sum()), 0.0)
        if not calibrated:
            shares = dict.fromkeys(KINDS, 0.0) | {"roofline": 1.0}
            return {"name": self.name, "coverage": shares, "overhead_fraction": None,
                    "roofline_lookups": []} | self._auto()  # fmt: skip
        lookups = seconds[:OVERHEAD].sum()
        total = seconds.sum()
        shares = {k: (float(seconds[i] / lookups) if lookups > 0 else None)
                  for i, k in enumerate(KINDS)}  # fmt: skip
        return {
            "name": self.name,
            "coverage": shares,
            "overhead_fraction": float(seconds[OVERHEAD] / total) if total > 0 else None,
            "roofline_lookups": self.fallbacks(),
        } | self._auto()

    def _auto(self) -> dict[str, Any]:
        """`source: auto` and one entry per GPU that `calibration: auto` chose a table for
        (which table, why, and the warning of a fallback); nothing for a named table, so
        those summaries are unchanged."""
        if not self.choices:
            return {}
        return {"source": "auto", "auto": list(self.choices)}

    def fallbacks(self) -> list[str]:
        """'op shape' of each lookup that fell back to the roofline (once each)."""
        out: list[str] = []
        for _, model in self.models:
            for line in fallback_lines(model):
                if line not in out:
                    out.append(line)
        return out


_active: ContextVar[Collector | None] = ContextVar("infsim_cost_coverage", default=None)


@contextmanager
def collecting() -> Iterator[Collector]:
    """Collect the cost models built inside the block (and warn about their fallbacks)."""
    collector = Collector()
    token = _active.set(collector)
    try:
        yield collector
    finally:
        _active.reset(token)


def register(name: str, model: Any, choice: dict[str, Any] | None = None) -> None:
    """Called by the factory for each cost model it builds; `choice`: how `calibration:
    auto` picked its table (recorded once per distinct choice)."""
    collector = _active.get()
    if collector is None:
        return
    collector.models.append((name, model))
    if choice is not None and choice not in collector.choices:
        collector.choices.append(dict(choice))
    for line in fallback_lines(model):
        message = f"calibration {name}: {line} not in the table: priced by the roofline"
        if message not in _warned:
            _warned.add(message)
            logger.warning(message)


def fallback_lines(model: Any) -> list[str]:
    lookup = getattr(model, "lookup", None)
    if lookup is None:
        return []
    return [f"{e['op']} {e['shape']}" for e in lookup.log.entries if e["method"] == "roofline"]


def _share_runs(
    models: list[Any], decode_runs: dict[int, tuple[float, float]]
) -> list[dict[int, tuple[float, float]]]:
    """Split the decode runs that ran among the models that priced runs of each width, in
    proportion to the steps each priced (exact with one model, the usual case)."""
    out: list[dict[int, tuple[float, float]]] = [{} for _ in models]
    for b, (steps, sec) in decode_runs.items():
        priced = [m.priced_run_steps.get(b, 0) for m in models]
        total = sum(priced)
        if not total:
            continue
        for i, p in enumerate(priced):
            if p:
                out[i][b] = (steps * p / total, sec * p / total)
    return out
