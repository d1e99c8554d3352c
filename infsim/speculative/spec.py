"""The scenario's `engine.speculative:` section (pydantic v2).

    engine:
      speculative:
        method: eagle                  # draft_model | eagle | mtp | ngram
        num_speculative_tokens: 3      # k drafts per decoding request per step
        acceptance: {kind: constant, rate: 0.7}
        #           {kind: geometric, rate: 0.8, decay: 0.9}
        #           {kind: empirical, per_position: [0.78, 0.55, 0.38]}
        disable_by_batch_size: 64      # no drafts while more requests run; null = never
        draft_model: null              # method draft_model: catalog name or config.json
        draft_overhead_s: 0.0          # fixed proposer time per speculating step

Names follow vLLM's `--speculative-config` (`method`, `num_speculative_tokens`,
`model`→`draft_model`) and its V0 `speculative_disable_by_batch_size`. Absent section =
no speculation (the default, as `vllm serve` without `--speculative-config`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from infsim.limits import BoundedModel
from infsim.speculative.acceptance import (
    AcceptanceModel,
    ConstantAcceptance,
    EmpiricalAcceptance,
    GeometricAcceptance,
)

FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ConstantAcceptanceSpec(BoundedModel):
    model_config = FROZEN
    kind: Literal["constant"] = Field(
        description="Every draft position is accepted with the same probability `rate`, "
        "given that the drafts before it were (the i.i.d. model of Leviathan et al. 2023)."
    )
    rate: float = Field(ge=0, le=1, description="Per-position acceptance rate α.")

    def build(self) -> AcceptanceModel:
        return ConstantAcceptance(self.rate)


class GeometricAcceptanceSpec(BoundedModel):
    model_config = FROZEN
    kind: Literal["geometric"] = Field(
        description="Acceptance that decays with depth: position i (0-based) is accepted "
        "with probability rate·decay^i given that the drafts before it were."
    )
    rate: float = Field(ge=0, le=1, description="Acceptance rate α of the first draft.")
    decay: float = Field(gt=0, le=1, description="Factor per further position (1 = constant).")

    def build(self) -> AcceptanceModel:
        return GeometricAcceptance(self.rate, self.decay)


class EmpiricalAcceptanceSpec(BoundedModel):
    model_config = FROZEN
    kind: Literal["empirical"] = Field(
        description="A measured per-position table, as vLLM logs it (SpecDecoding metrics "
        "'Per-position acceptance rate' = accepted drafts at position i / drafts)."
    )
    per_position: list[float] = Field(
        min_length=1,
        description="Marginal acceptance rate of draft position i (0-based): the fraction "
        "of steps whose first i+1 drafts were all accepted. Non-increasing, each in [0, 1]; "
        "at least num_speculative_tokens entries (entries past k are not used, so one "
        "table measured at a larger k serves every smaller k).",
    )

    @model_validator(mode="after")
    def _table(self) -> EmpiricalAcceptanceSpec:
        values = self.per_position
        for i, value in enumerate(values):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"per_position[{i}] = {value} is outside [0, 1]")
            if i and value > values[i - 1]:
                raise ValueError(
                    f"per_position[{i}] = {value} exceeds per_position[{i - 1}] = "
                    f"{values[i - 1]}: a marginal rate cannot grow with depth (position i "
                    "is only accepted when every earlier one is)"
                )
        return self

    def build(self) -> AcceptanceModel:
        return EmpiricalAcceptance(tuple(self.per_position))


AcceptanceSpec = Annotated[
    ConstantAcceptanceSpec | GeometricAcceptanceSpec | EmpiricalAcceptanceSpec,
    Field(discriminator="kind"),
]

SpeculativeMethod = Literal["draft_model", "eagle", "mtp", "ngram"]


class SpeculativeSpec(BoundedModel):
    """Speculative decoding of one engine (vLLM V1 semantics, see docs/speculative.md)."""

    model_config = FROZEN
    method: SpeculativeMethod = Field(
        description="Proposer: draft_model (a smaller model, priced by its own cost model "
        "on the same hardware), eagle / mtp (a one-layer head of the target's width plus "
        "its LM head), ngram (prompt lookup on the CPU: no GPU time)."
    )
    num_speculative_tokens: int = Field(
        ge=1, le=64, description="Draft tokens k proposed per decoding request per step."
    )
    acceptance: AcceptanceSpec = Field(
        description="How many drafts the target accepts: {kind: constant, rate}, {kind: "
        "geometric, rate, decay} or {kind: empirical, per_position: [...]}; no default, "
        "since acceptance depends on the model pair and the data."
    )
    disable_by_batch_size: int | None = Field(
        None,
        ge=1,
        description="Propose no drafts in a step that starts with more than this many "
        "running requests (vLLM V0 speculative_disable_by_batch_size); null = never.",
    )
    draft_model: str | None = Field(
        None,
        description="method draft_model only: the draft model, a catalog name (`infsim "
        "catalog models`) or a config.json path relative to the scenario file.",
    )
    draft_overhead_s: float = Field(
        0.0,
        ge=0,
        description="Fixed proposer time added to every speculating step (s), e.g. the "
        "CPU n-gram lookup; 0 = none (the GPU passes of a draft model or head are priced "
        "by the cost model, not by this).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SpeculativeSpec:
        if self.method == "draft_model" and self.draft_model is None:
            raise ValueError(
                "method draft_model needs draft_model: a catalog name or config.json path"
            )
        if self.method != "draft_model" and self.draft_model is not None:
            raise ValueError(
                f"draft_model is only used with method draft_model (method is {self.method}); "
                "remove it"
            )
        acc = self.acceptance
        k = self.num_speculative_tokens
        if isinstance(acc, EmpiricalAcceptanceSpec) and len(acc.per_position) < k:
            raise ValueError(
                f"acceptance.per_position has {len(acc.per_position)} entries but "
                f"num_speculative_tokens is {k}; give at least {k} (one per draft position)"
            )
        return self
