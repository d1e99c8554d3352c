"""Bad numbers and sizes end in a clear InputError (issue 15): finite values only, upper
bounds with a way to raise them, --set on list items, unreadable scenario files, and runs
that cannot make progress."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.scenario.load import apply_override, load_scenario, validate_scenario

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("section", "value"),
    [({"slo": {"ttft_s": float("inf")}}, "finite"),
     ({"cost": {"usd_per_gpu_hour": float("nan")}}, "finite"),
     ({"slo": {"e2e_s": 1e308}}, "less than or equal"),
     ({"deployment": {"replicas": 2**31}}, "INFSIM_MAX_REPLICAS"),
     ({"engine": {"max_num_batched_tokens": 10**12}}, "INFSIM_MAX_TOKENS"),
     ({"seed": 10**30}, "INFSIM_MAX_SEED")],
)  # fmt: skip
def test_nonsense_numbers_are_refused(raw_scenario, section: dict, value: str) -> None:
    with pytest.raises(InputError, match=value):
        validate_scenario(raw_scenario(**section), "s.yaml")


def test_a_number_beyond_any_sensible_magnitude_is_refused(raw_scenario) -> None:
    noise = {"cv": 0.1, "correlation_s": 1e12}
    raw = raw_scenario(hardware={"gpu": "h100-sxm", "speed_noise": noise})
    with pytest.raises(InputError, match=r"correlation_s: 1e\+12 is beyond .* INFSIM_MAX_RATE"):
        validate_scenario(raw, "s.yaml")


def test_a_bound_is_raised_by_its_environment_variable() -> None:
    code = ("from infsim.scenario.load import validate_scenario\n"
            "import sys; sys.path.insert(0, 'tests/scenario')\n"
            "from conftest import MINIMAL\n"
            "s = validate_scenario({**MINIMAL, 'deployment': {'replicas': 12000}}, 's')\n"
            "print(s.deployment.replicas)\n")  # fmt: skip
    env = {**os.environ, "INFSIM_MAX_REPLICAS": "20000"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env=env, check=True)  # fmt: skip
    assert out.stdout.strip() == "12000"


def test_set_on_a_list_item_says_lists_are_set_whole() -> None:
    with pytest.raises(InputError, match=r"deployment.pools is a list, and --set cannot"):
        apply_override({}, "deployment.pools.0.replicas=2")


def test_unreadable_scenario_files(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 2000 + "]" * 2000)
    with pytest.raises(InputError, match=r"nested 2000 levels deep; at most 64"):
        load_scenario(deep)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"model: x\n\xff\xfe")
    with pytest.raises(InputError, match=r"line 2: the scenario file is not UTF-8"):
        load_scenario(binary)
    with pytest.raises(InputError, match=r"is a directory"):
        load_scenario(tmp_path)


def test_a_huge_value_is_shortened_in_the_message(raw_scenario) -> None:
    raw = raw_scenario()
    apply_override(raw, "seed=" + "9" * 5000)
    with pytest.raises(InputError) as err:
        validate_scenario(raw, "s.yaml")
    assert len(str(err.value)) < 400
    assert "(5,002 characters)" in str(err.value)  # the repr: quotes included


def test_a_failure_storm_ends_with_an_error_not_a_hang() -> None:
    """Spot interruptions far faster than a replica can start: no request can finish."""
    from infsim import api

    spec = load_scenario(REPO / "scenarios/spot-failures.yaml", [
        "deployment.pools=[{name: spot, gpu: h100-sxm, replicas: 2, pricing: {kind: spot, "
        "spot_interruptions_per_hour: 100000}, cold_start: {provisioning: {kind: fixed, "
        "value_s: 600}}}]"])  # fmt: skip
    with pytest.raises(InputError, match=r"made no progress: 1,000 replicas were lost"):
        api.run(spec, base_dir=REPO / "scenarios")


def test_the_api_resolves_paths_against_the_loaded_yaml(tmp_path, monkeypatch) -> None:
    """run(load_scenario(path)) with a trace scenario works from any directory (issue 16)."""
    from infsim import api

    monkeypatch.chdir(tmp_path)
    spec = load_scenario(REPO / "scenarios/autoscaling-burst.yaml")
    assert spec.source_path == (REPO / "scenarios/autoscaling-burst.yaml").resolve()
    assert api.run(spec).summary["requests"]["total"] > 0
