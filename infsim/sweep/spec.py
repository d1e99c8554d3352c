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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infsim.errors import InputError


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
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: axes file not found") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: invalid YAML: {err}") from None
    return parse_sweep(data, str(path))
