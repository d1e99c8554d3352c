"""The axes file (`infsim sweep SCENARIO --axes AXES.yaml`, or a scenario's `sweep:` block).

    mode: grid                      # grid (cartesian product) or zip (i-th of each axis)
    axes:                           # dotted scenario path -> list of values
      hardware.gpu: [h100-sxm, a100-80gb]
      deployment.tensor_parallel: [1, 2, 4, 8]
    constraints:                    # expressions over the point's scenario; false = skip
      - deployment.tensor_parallel * deployment.replicas <= 8
    skip_infeasible: true           # skip points the catalogs reject (TP vs heads, no fit)

Axis paths are the same dotted paths as `infsim run --set`, validated against the scenario
schema, so the sweep knows no field by name and follows the schema as it grows.

The file is read through `infsim.textio` (UTF-8, nesting, huge integers) and its values are
bounded before anything else looks at them: plain data only (mappings with string keys,
lists, strings, finite numbers, booleans, null), at most `MAX_VALUE_NODES` values in all
(a YAML alias bomb is refused, not expanded), and a grid of at most `max_points` points
(`MAX_POINTS`, raised by `--max-points` or `INFSIM_MAX_POINTS`), counted before any point
is built.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infsim.errors import InputError
from infsim.textio import MAX_DEPTH, load_yaml, read_text

MAX_VALUE_NODES = 1_000_000
"""Values (leaves and containers) an axes file may hold, aliases counted as expanded."""


def _max_points_default() -> int:
    text = os.environ.get("INFSIM_MAX_POINTS", "")
    try:
        value = int(text)
    except ValueError:
        return 100_000
    return value if value > 0 else 100_000


MAX_POINTS = _max_points_default()
"""Most points a sweep may have (grid: the product of the axis lengths) unless raised with
`--max-points N` or the environment variable INFSIM_MAX_POINTS. Each point is validated,
resolved and keyed before anything runs (about a millisecond each) and listed in sweep.json."""


class SweepSpec(BaseModel):
    """Axes, how they combine, and which points to skip."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: Literal["grid", "zip"] = Field(
        "grid", description="grid: every combination of the axes; zip: the i-th value of each."
    )
    axes: dict[str, list[Any]] = Field(
        min_length=1,
        description="Dotted scenario path (as `--set`) -> non-empty list of values, in order.",
    )
    constraints: tuple[str, ...] = Field(
        (),
        description="Expressions over the point's scenario fields (dotted names); a point "
        "where one is false is skipped and listed as skipped.",
    )
    skip_infeasible: bool = Field(
        True,
        description="Skip points the catalogs reject at resolve time (TP must divide heads, "
        "weights must fit); false = such a point is an error before anything runs.",
    )

    @property
    def num_points(self) -> int:
        """Points of the axes before constraints: the product of the axis lengths (grid)
        or the common length (zip). Counted, never enumerated."""
        lengths = [len(v) for v in self.axes.values()]
        return lengths[0] if self.mode == "zip" else math.prod(lengths)

    def check_size(self, source: str, max_points: int | None = None) -> None:
        """Refuse, before any point is built, a sweep of more than `max_points` points."""
        limit = MAX_POINTS if max_points is None else max_points
        count = self.num_points
        if count <= limit:
            return
        if self.mode == "zip":
            how = f"zip of {count:,} values per axis"
        else:
            lengths = " × ".join(str(len(v)) for v in self.axes.values())
            how = f"grid of {lengths} values" if len(lengths) <= 200 else "grid"
        raise InputError(
            f"{source}: the sweep has {count:,} points ({how}); at most {limit:,} points are "
            "allowed: split the axes into several sweeps, or raise the limit with "
            "--max-points N (or INFSIM_MAX_POINTS=N) if this machine can hold them"
        )

    @model_validator(mode="after")
    def _check_axes(self) -> SweepSpec:
        for path, values in self.axes.items():
            if not values:
                raise ValueError(f"axes.{path}: needs at least one value")
        if self.mode == "zip":
            lengths = {path: len(v) for path, v in self.axes.items()}
            if len(set(lengths.values())) > 1:
                shown = ", ".join(f"{p}: {n}" for p, n in lengths.items())
                raise ValueError(f"mode zip needs axes of equal length, got {shown}")
        return self


def parse_sweep(data: Any, source: str) -> SweepSpec:
    if not isinstance(data, dict):
        raise InputError(
            f"{source}: a sweep must be a mapping with axes (dotted path -> values), optional "
            f"mode (grid|zip), constraints and skip_infeasible; got {type(data).__name__}"
        )
    check_plain(data, source)
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            path = ".".join(str(x) for x in e["loc"]) or "(top level)"
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown field; allowed: " + ", ".join(sorted(SweepSpec.model_fields))
            parts.append(f"{path}: {msg}")
        raise InputError(f"{source}: invalid sweep: " + "; ".join(parts)) from None


def read_axes_file(path: Path) -> SweepSpec:
    return parse_sweep(load_yaml(read_text(path, "axes file"), str(path)), str(path))


_SCALARS = (type(None), bool, int, float, str)


def check_plain(data: Any, source: str) -> None:
    """Refuse what is not plain, finite, bounded data: every value must survive JSON
    (sweep.json, the point key) unchanged. Iterative, counting values as they are
    reached, with a budget of MAX_VALUE_NODES, so that neither an alias bomb nor a
    self-referencing list can run away."""
    # each entry: (value, its path as a linked (parent, key) pair, depth)
    stack: list[tuple[Any, Any, int]] = [(data, None, 0)]
    seen = 1
    while stack:
        value, link, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(
                f"{source}: {_path(link)}: nested more than {MAX_DEPTH} levels deep; at most "
                f"{MAX_DEPTH} levels are accepted"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(
                f"{source}: {_path(link)}: {value} is not a finite number; axis values must "
                "be finite numbers, strings, booleans, null, lists or mappings of them"
            )
        if isinstance(value, dict | list):
            seen += len(value)
            if seen > MAX_VALUE_NODES:
                raise InputError(
                    f"{source}: holds more than {MAX_VALUE_NODES:,} values (YAML aliases "
                    "counted as expanded); a sweep's axes are lists of plain values"
                )
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InputError(
                        f"{source}: {_path(link)}: key {_short(key)} is a "
                        f"{type(key).__name__}; mapping keys must be text"
                    )
                stack.append((item, (link, key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, (link, i), depth + 1) for i, item in enumerate(value))
        elif not isinstance(value, _SCALARS):
            raise InputError(
                f"{source}: {_path(link)}: {_short(value)} is a {type(value).__name__}; "
                "allowed: numbers, strings, booleans, null, lists and mappings of them "
                "(quote dates)"
            )


def _path(link: Any) -> str:
    """`(((None, 'axes'), 'a.b'), 2)` → `axes.a.b[2]`."""
    parts: list[Any] = []
    while link is not None:
        link, key = link
        parts.append(key)
    text = ""
    for key in reversed(parts):
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text or "(top level)"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2 :]}"
