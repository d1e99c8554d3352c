"""Host step overhead defaults: per engine release, from table metadata, or the scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.cost.factory import roofline_params
from infsim.cost.table import CalibrationMeta, StepOverheadMeta
from infsim.errors import InputError
from infsim.scenario.host_overhead import (
    VLLM_V0,
    VLLM_V1,
    default_host_overhead,
    resolve_step_overhead,
)
from infsim.scenario.load import validate_scenario
from infsim.scenario.resolve import resolve
from infsim.scenario.schema import RooflineSpec


def resolved_of(raw):
    return resolve(validate_scenario(raw, "s.yaml"), Path("."), "s.yaml")


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.6.0", VLLM_V0), ("0.7.3", VLLM_V0), ("0.8.0", VLLM_V1), ("0.15.1", VLLM_V1),
     ("0.33.0", VLLM_V1)],
)  # fmt: skip
def test_default_follows_the_release(version: str, expected) -> None:
    assert default_host_overhead("vllm", version) == expected


def test_other_engines_get_v1_numbers_and_say_so() -> None:
    d = default_host_overhead("sglang", "0.4.0")
    assert (d.fixed_s, d.per_seq_s) == (VLLM_V1.fixed_s, VLLM_V1.per_seq_s)
    assert d.source.startswith("no default of its own for sglang 0.4.0")


def test_resolved_scenario_carries_the_default(raw_scenario) -> None:
    rs = resolved_of(raw_scenario(engine={"version": "0.6.0"}))
    cm = rs.scenario.cost_model
    assert (cm.step_overhead_s, cm.per_seq_overhead_s, cm.per_worker_overhead_s) == (
        VLLM_V0.fixed_s, VLLM_V0.per_seq_s, VLLM_V0.per_worker_s)  # fmt: skip
    assert rs.step_overhead.source == VLLM_V0.source
    assert not rs.step_overhead.explicit


def test_per_worker_term_is_folded_into_the_fixed_one(raw_scenario) -> None:
    raw = raw_scenario(model="llama-3.1-70b", engine={"version": "0.6.0"},
                       deployment={"tensor_parallel": 4})  # fmt: skip
    params = roofline_params(resolved_of(raw).replica())
    assert params.step_overhead_s == pytest.approx(VLLM_V0.fixed_s + 3 * VLLM_V0.per_worker_s)
    assert params.per_seq_overhead_s == VLLM_V0.per_seq_s


def test_scenario_terms_win_and_the_source_says_which(raw_scenario) -> None:
    rs = resolved_of(raw_scenario(cost_model={"step_overhead_s": 0.002}))
    assert rs.step_overhead.fixed_s == 0.002
    assert rs.step_overhead.per_seq_s == VLLM_V1.per_seq_s
    assert rs.step_overhead.explicit
    assert rs.step_overhead.source.startswith("scenario (cost_model.step_overhead_s); else ")
    rs = resolved_of(raw_scenario(cost_model={"per_worker_overhead_s": 1e-5}))
    assert not rs.step_overhead.explicit  # a table's measured rows still give fixed/per-seq


def _meta(engine: str, version: str) -> CalibrationMeta:
    return CalibrationMeta(
        name="t", device="h100-sxm", engine=engine, engine_version=version, source="s",
        profiler="p", importer="i",
        step_overhead=StepOverheadMeta(fixed_s=1e-3, per_seq_s=2e-6, source="own host"),
    )  # fmt: skip


def test_table_metadata_applies_to_its_own_release_only() -> None:
    got = resolve_step_overhead(RooflineSpec(), _meta("vllm", "0.19.0"), "0.19.0")
    assert (got.fixed_s, got.per_seq_s) == (1e-3, 2e-6)
    assert got.source == "calibration t metadata: own host"
    other = resolve_step_overhead(RooflineSpec(), _meta("vllm", "0.19.0"), "0.6.0")
    assert other == VLLM_V0
    torch = resolve_step_overhead(RooflineSpec(), _meta("torch", "2.13"), "0.33.0")
    assert torch.fixed_s == 1e-3


@pytest.mark.parametrize("bad", [-1.0, float("inf"), 11.0])
def test_bad_values_exit_with_the_field_path(raw_scenario, bad: float) -> None:
    with pytest.raises(InputError, match=r"cost_model.step_overhead_s"):
        validate_scenario(raw_scenario(cost_model={"step_overhead_s": bad}), "s.yaml")


def test_cpu_devices_schedule_synchronously(raw_scenario) -> None:
    """vLLM's CPU platform turns async scheduling off whatever the release."""
    raw = raw_scenario(model="tiny-llama", hardware={"gpu": "cpu-host"},
                       engine={"version": "0.32.0", "kv_cache_memory_bytes": 1 << 30})  # fmt: skip
    assert resolved_of(raw).scenario.engine.async_scheduling is False
    raw["engine"]["async_scheduling"] = True
    with pytest.raises(InputError, match=r"engine.async_scheduling: true on a CPU device"):
        resolved_of(raw)
