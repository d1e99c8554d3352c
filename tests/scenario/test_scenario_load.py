"""Scenario files and --set overrides: validation and the wording of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.scenario.load import apply_override, load_scenario, validate_scenario


def test_minimal_scenario_gets_defaults(raw_scenario):
    s = validate_scenario(raw_scenario(), "s.yaml")
    assert s.deployment.replicas == 1
    assert s.engine.block_size == 16
    assert s.engine.max_num_seqs is None  # resolved later from the GPU
    assert s.router.kind == "round_robin"


def test_unknown_field_names_path_and_suggests(raw_scenario):
    with pytest.raises(InputError) as err:
        validate_scenario(raw_scenario(engine={"max_num_seq": 4}), "s.yaml")
    msg = str(err.value)
    assert msg.startswith("s.yaml: invalid scenario: engine.max_num_seq: unknown field")
    assert "did you mean 'max_num_seqs'?" in msg
    assert "allowed here:" in msg
    assert "max_num_batched_tokens" in msg


def test_wrong_type_and_range_are_reported_together(raw_scenario):
    with pytest.raises(InputError) as err:
        validate_scenario(
            raw_scenario(engine={"block_size": 0, "gpu_memory_utilization": "lots"}), "s.yaml"
        )
    msg = str(err.value)
    assert "engine.block_size: Input should be greater than or equal to 1 (got 0)" in msg
    assert "engine.gpu_memory_utilization" in msg
    assert "'lots'" in msg


def test_missing_required_section(raw_scenario):
    raw = raw_scenario()
    del raw["hardware"]
    with pytest.raises(InputError, match=r"hardware: required field is missing"):
        validate_scenario(raw, "s.yaml")


def test_unknown_field_inside_discriminated_union_lists_member_fields(raw_scenario):
    raw = raw_scenario()
    raw["workload"] = {
        "synthetic": dict(
            raw_scenario()["workload"]["synthetic"], arrival={"kind": "poisson", "rte": 1}
        )
    }
    with pytest.raises(InputError) as err:
        validate_scenario(raw, "s.yaml")
    assert "rte" in str(err.value)


def test_conflicting_kv_capacity_knobs(raw_scenario):
    with pytest.raises(InputError, match="at most one of num_gpu_blocks_override"):
        validate_scenario(
            raw_scenario(engine={"num_gpu_blocks_override": 10, "kv_cache_memory_bytes": 1 << 30}),
            "s.yaml",
        )


def test_yaml_syntax_error_names_line(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text("model: x\nengine: {max_num_seqs: 4\n")
    with pytest.raises(InputError, match=r"bad.yaml: invalid YAML at line \d+"):
        load_scenario(f)


def test_non_mapping_and_missing_file(tmp_path: Path):
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_scenario(f)
    with pytest.raises(InputError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.yaml")


def test_override_sets_nested_values_parsed_as_yaml(raw_scenario):
    raw = raw_scenario()
    apply_override(raw, "engine.max_num_seqs=64")
    apply_override(raw, "engine.enable_prefix_caching=false")
    apply_override(raw, "deployment.replicas=3")
    apply_override(raw, "slo.ttft_s=0.25")
    s = validate_scenario(raw, "s.yaml")
    assert s.engine.max_num_seqs == 64
    assert s.engine.enable_prefix_caching is False
    assert s.deployment.replicas == 3
    assert s.slo.ttft_s == 0.25


def test_public_override_paths_exist(raw_scenario):
    """These dotted paths are public interface (issue #2) and must keep their names."""
    raw = raw_scenario()
    for item in (
        "seed=7",
        "model=qwen3-8b",
        "hardware.gpu=a100-80gb",
        "deployment.replicas=2",
        "deployment.tensor_parallel=2",
        "engine.max_num_seqs=8",
        "engine.max_num_batched_tokens=512",
        "engine.enable_chunked_prefill=false",
        "engine.long_prefill_token_threshold=128",
        "engine.block_size=32",
        "engine.gpu_memory_utilization=0.8",
        "engine.num_gpu_blocks_override=1000",
        "engine.enable_prefix_caching=false",
        "engine.scheduling_policy=priority",
    ):
        apply_override(raw, item)
    s = validate_scenario(raw, "s.yaml")
    assert (s.seed, s.model, s.hardware.gpu) == (7, "qwen3-8b", "a100-80gb")
    assert s.engine.scheduling_policy == "priority"
    assert s.engine.num_gpu_blocks_override == 1000


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("engine.max_num_seq=4", r"engine has no field 'max_num_seq' \(did you mean"),
        ("engin.max_num_seqs=4", r"the scenario has no field 'engin' \(did you mean 'engine'"),
        ("noequals", "expected dotted.path=value"),
    ],
)
def test_bad_override_paths(item: str, pattern: str, raw_scenario):
    with pytest.raises(InputError, match=pattern):
        apply_override(raw_scenario(), item)


def test_override_value_is_validated_like_the_file(raw_scenario):
    raw = raw_scenario()
    apply_override(raw, "engine.max_num_seqs=abc")
    with pytest.raises(InputError, match=r"engine.max_num_seqs: .*integer.*'abc'"):
        validate_scenario(raw, "s.yaml")
