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
from collections.abc import Iterator, Sequence
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
        calibrated = self.calibrated()
        runs = share_runs([[m.priced_run_steps] for m in calibrated], decode_runs)
        seconds = [[m.coverage_s(r[0])] for m, r in zip(calibrated, runs, strict=True)]
        return coverage_section(self.name, seconds, len(self.models), step_time_s,
                                self.fallbacks(), self._auto())  # fmt: skip

    def calibrated(self) -> list[Any]:
        """The models that tally coverage (calibrated ones), in build order."""
        return [m for _, m in self.models if hasattr(m, "coverage_s")]

    def tallies(self) -> list[ModelTally]:
        """What a split run's worker reports of the models it built (`SplitCollector`)."""
        return [ModelTally.of(name, model) for name, model in self.models]

    def part_seconds(self, shares: list[dict[int, tuple[float, float]]]) -> list[np.ndarray]:
        """A split run's worker: each calibrated model's seconds per kind, given its
        share of the whole run's decode runs (`SplitCollector.shares`)."""
        return [m.coverage_s(r) for m, r in zip(self.calibrated(), shares, strict=True)]

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
    _warn(name, fallback_lines(model))


def _warn(name: str, lines: Sequence[str]) -> None:
    for line in lines:
        message = f"calibration {name}: {line} not in the table: priced by the roofline"
        if message not in _warned:
            _warned.add(message)
            logger.warning(message)


def fallback_lines(model: Any) -> list[str]:
    lookup = getattr(model, "lookup", None)
    if lookup is None:
        return []
    return [f"{e['op']} {e['shape']}" for e in lookup.log.entries if e["method"] == "roofline"]


Runs = dict[int, tuple[float, float]]


def share_runs(priced: list[list[dict[int, int]]], decode_runs: Runs) -> list[list[Runs]]:
    """Split the decode runs that ran among the models that priced runs of each width, in
    proportion to the steps each priced (exact with one model, the usual case).
    `priced[i][w]`: model i's decode-run steps priced per width, in worker w of a run split
    by replica (one worker otherwise); the result is indexed the same way."""
    out: list[list[Runs]] = [[{} for _ in slot] for slot in priced]
    for b, (steps, sec) in decode_runs.items():
        counts = [[p.get(b, 0) for p in slot] for slot in priced]
        total = sum(sum(slot) for slot in counts)
        if not total:
            continue
        for i, slot in enumerate(counts):
            for w, p in enumerate(slot):
                if p:
                    out[i][w][b] = (steps * p / total, sec * p / total)
    return out


def coverage_section(
    name: str,
    seconds: list[list[np.ndarray]],
    num_models: int,
    step_time_s: float,
    fallbacks: list[str],
    auto: dict[str, Any],
) -> dict[str, Any]:
    """The `calibration` section from the seconds per kind each calibrated model priced
    (`seconds[i][w]`: model i in worker w; one worker unless split by replica)."""
    total_s = np.zeros(NUM_KINDS)
    for slot in seconds:
        for part in slot:
            total_s += part
    if len(seconds) < num_models:
        total_s[ROOFLINE] += max(step_time_s - float(total_s.sum()), 0.0)
    if not seconds:
        shares = dict.fromkeys(KINDS, 0.0) | {"roofline": 1.0}
        return {"name": name, "coverage": shares, "overhead_fraction": None,
                "roofline_lookups": []} | auto  # fmt: skip
    lookups = total_s[:OVERHEAD].sum()
    total = total_s.sum()
    shares = {k: (float(total_s[i] / lookups) if lookups > 0 else None)
              for i, k in enumerate(KINDS)}  # fmt: skip
    return {
        "name": name,
        "coverage": shares,
        "overhead_fraction": float(total_s[OVERHEAD] / total) if total > 0 else None,
        "roofline_lookups": fallbacks,
    } | auto


@dataclass(frozen=True)
class ModelTally:
    """What a split run's worker reports of one cost model it built: enough for the
    merged `calibration` and host sections (the model itself, with its table, is tens
    of MB)."""

    name: str
    calibrated: bool
    priced_run_steps: dict[int, int]
    fallback_lines: tuple[str, ...]
    overhead_measured: bool = False
    overhead_fit: Any = None

    @classmethod
    def of(cls, name: str, model: Any) -> ModelTally:
        return cls(name, hasattr(model, "coverage_s"),
                   dict(getattr(model, "priced_run_steps", {})), tuple(fallback_lines(model)),
                   getattr(model, "overhead_measured", False),
                   getattr(model, "overhead_fit", None))  # fmt: skip


class SplitCollector:
    """The cost models of a run split by replica: every worker built the same models in
    the same order (`parts[w][i]`: model i of worker w), each tallying its own replicas'
    steps. Coverage is the sum over workers, in two phases: `shares` splits the merged
    decode runs, each worker prices its share (`Collector.part_seconds`), `add_seconds`."""

    def __init__(self, parts: list[list[ModelTally]], choices: list[dict[str, Any]]) -> None:
        self.parts = parts
        self.choices = choices
        self.seconds: list[list[np.ndarray]] = []  # [calibrated model][worker]

    @property
    def models(self) -> list[tuple[str, ModelTally]]:
        return [(t.name, t) for t in self.parts[0]]

    @property
    def name(self) -> str:
        names = list(dict.fromkeys(t.name for t in self.parts[0]))
        return ", ".join(names) if names else "roofline"

    def _calibrated(self) -> list[int]:
        return [i for i, t in enumerate(self.parts[0]) if t.calibrated]

    def shares(self, decode_runs: Runs) -> list[list[Runs]]:
        """Per worker, each calibrated model's share of the merged decode runs."""
        slots = self._calibrated()
        priced = [[part[i].priced_run_steps for part in self.parts] for i in slots]
        by_slot = share_runs(priced, decode_runs)
        return [[by_slot[j][w] for j in range(len(slots))] for w in range(len(self.parts))]

    def add_seconds(self, per_worker: list[list[np.ndarray]]) -> None:
        """The workers' `part_seconds`, in worker order."""
        num_slots = len(self._calibrated())
        self.seconds = [[part[j] for part in per_worker] for j in range(num_slots)]

    def fallbacks(self) -> list[str]:
        out: list[str] = []
        for i in range(len(self.parts[0])):
            for part in self.parts:
                for line in part[i].fallback_lines:
                    if line not in out:
                        out.append(line)
        return out

    def warn(self) -> None:
        """The fallback warnings, once per process (the workers' were silenced)."""
        for i in range(len(self.parts[0])):
            for part in self.parts:
                _warn(part[i].name, part[i].fallback_lines)

    def section(self, decode_runs: Runs, step_time_s: float) -> dict[str, Any]:
        """As `Collector.section`; the decode runs were shared out by `shares`."""
        auto = {"source": "auto", "auto": list(self.choices)} if self.choices else {}
        return coverage_section(self.name, self.seconds, len(self.parts[0]), step_time_s,
                                self.fallbacks(), auto)  # fmt: skip
