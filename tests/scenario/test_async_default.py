"""engine.async_scheduling resolves to vLLM's default for the simulated release."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.scenario.load import validate_scenario
from infsim.scenario.resolve import resolve
from infsim.scenario.vllm_defaults import default_async_scheduling, version_tuple


@pytest.fixture
def engine_of(raw_scenario):
    def build(**sections):
        scen = validate_scenario(raw_scenario(**sections), "s.yaml")
        return resolve(scen, Path("."), "s.yaml").scenario.engine

    return build


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.6.0", False), ("0.13.0", False), ("0.13.9", False), ("0.14.0", True),
     ("0.15.1", True), ("0.19", True), ("1.0.0", True)],
)  # fmt: skip
def test_default_follows_the_release(engine_of, version: str, expected: bool) -> None:
    engine = engine_of(engine={"version": version})
    assert engine.async_scheduling is expected
    assert engine.version == version


def test_version_comes_from_the_calibration_table(engine_of) -> None:
    engine = engine_of(calibration="a100-vllm-0.14", hardware={"gpu": "a100-80gb"})
    assert (engine.version, engine.async_scheduling) == ("0.14.0", True)
    engine = engine_of()  # roofline: the newest release infsim follows
    assert (engine.version, engine.async_scheduling) == ("0.33.0", True)


def test_explicit_value_wins(engine_of) -> None:
    assert engine_of(engine={"async_scheduling": False}).async_scheduling is False
    assert engine_of(engine={"version": "0.6.0", "async_scheduling": True}).async_scheduling


def test_speculative_methods_and_pipeline() -> None:
    assert default_async_scheduling("0.19.0", speculative_method="eagle")
    assert default_async_scheduling("0.19.0", speculative_method="mtp")
    assert not default_async_scheduling("0.19.0", speculative_method="ngram")
    assert not default_async_scheduling("0.19.0", speculative_method="draft_model")
    assert not default_async_scheduling("0.19.0", pipeline_parallel=2)
    assert version_tuple("0.15") == (0, 15, 0)


def test_pipeline_parallel_defaults_off_and_refuses_true(raw_scenario) -> None:
    raw = raw_scenario(model="llama-3.1-70b", deployment={"tensor_parallel": 4,
                                                          "pipeline_parallel": 2})  # fmt: skip
    engine = resolve(validate_scenario(raw, "s.yaml"), Path("."), "s.yaml").scenario.engine
    assert engine.async_scheduling is False
    raw["engine"] = {"async_scheduling": True}
    pattern = r"engine.async_scheduling: true is not modelled with deployment.pipeline_parallel"
    with pytest.raises(InputError, match=pattern):
        resolve(validate_scenario(raw, "s.yaml"), Path("."), "s.yaml")


@pytest.mark.parametrize("bad", ["latest", "0.x", "15"])
def test_bad_version_is_an_input_error(raw_scenario, bad: str) -> None:
    with pytest.raises(InputError, match=r"engine.version"):
        validate_scenario(raw_scenario(engine={"version": bad}), "s.yaml")
