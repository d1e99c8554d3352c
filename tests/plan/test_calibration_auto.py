"""`calibration: auto`: the built-in table of the scenario's GPU (and engine version), told
on stderr and recorded in summary.json; a GPU without a table gets the roofline, with a
warning, recorded too."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim import api
from infsim.cost import store
from infsim.cost.store import pick_auto

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _tell_again(monkeypatch):
    monkeypatch.setattr(store, "_told", set())  # each test sees its own stderr lines


def test_h100_picks_the_h100_table():
    choice = pick_auto("H100-SXM", None)
    assert choice.name == "h100-vllm-0.19"
    assert choice.warning is None
    assert pick_auto("H200", None).name == "h200-vllm-0.19"


def test_the_engine_version_selects_the_table_and_a_missing_one_is_warned():
    assert pick_auto("A100-80GB", "0.14.0").name == "a100-vllm-0.14"
    assert pick_auto("A100-80GB", "0.14.0").warning is None
    other = pick_auto("H100-SXM", "0.15.1")
    assert other.name == "h100-vllm-0.19"
    assert "0.15.1" in other.warning
    assert "h100-vllm-0.19" in other.warning


def test_a_run_on_h100_uses_and_records_the_h100_table(tiny: Path, capfd):
    run = api.run(api.load_scenario(tiny, ["calibration=auto"]), tiny.parent)
    assert run.resolved.calibration_dir.name == "h100-vllm-0.19"
    assert run.resolved.scenario.calibration == "h100-vllm-0.19"  # scenario.resolved.yaml
    section = run.summary["calibration"]
    assert section["name"] == "h100-vllm-0.19"
    assert section["source"] == "auto"
    assert section["auto"] == [
        {
            "source": "auto",
            "gpu": "H100-SXM",
            "engine_version": None,
            "table": "h100-vllm-0.19",
            "reason": "measured on H100-SXM with vllm 0.19.0",
            "warning": None,
        }
    ]
    assert "calibration: auto: H100-SXM → h100-vllm-0.19" in capfd.readouterr().err


def test_a_gpu_without_a_table_falls_back_to_the_roofline_with_a_warning(tiny: Path, capfd):
    run = api.run(api.load_scenario(tiny, ["calibration=auto", "hardware.gpu=l4"]), tiny.parent)
    assert run.resolved.calibration_dir is None
    assert run.resolved.scenario.calibration == "roofline"
    section = run.summary["calibration"]
    assert section["name"] == "roofline"
    assert section["source"] == "auto"
    (entry,) = section["auto"]
    assert entry["gpu"] == "L4"
    assert entry["table"] == "roofline"
    assert "no built-in calibration table was measured on L4" in entry["warning"]
    err = capfd.readouterr().err
    assert "warning:" in err
    assert "L4 → roofline" in err


def test_a_named_table_records_no_auto_section(tiny: Path):
    run = api.run(api.load_scenario(tiny, ["calibration=h100-vllm-0.19"]), tiny.parent)
    assert "source" not in run.summary["calibration"]
    assert "auto" not in run.summary["calibration"]


def test_each_pool_gets_its_own_pick():
    path = REPO / "scenarios" / "heterogeneous-fleet.yaml"
    scenario = api.load_scenario(path, ["calibration=auto"])
    resolved, _ = api.prepare(scenario, path.parent, source=str(path))
    picks = {p.spec.gpu: p.replica.calibration_name for p in resolved.pools}
    assert picks == {"H100-SXM": "h100-vllm-0.19", "L40S": "roofline"}
