"""Axes → points: grid and zip order, constraints and feasibility skips, validation of
every point before anything runs, and the point key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.sweep.points import PointContext, PointTask, SkippedPoint, expand, plan
from infsim.sweep.spec import parse_sweep
from tests.sweep.conftest import BASE


def _ctx(raw=None) -> PointContext:
    return PointContext(base_raw=copy.deepcopy(raw or BASE), base_dir=Path("."), source="base.yaml")


def test_grid_is_the_cartesian_product_last_axis_fastest():
    spec = parse_sweep({"axes": {"a.x": [1, 2], "b.y": ["p", "q", "r"]}}, "axes.yaml")
    assert expand(spec) == [
        {"a.x": 1, "b.y": "p"}, {"a.x": 1, "b.y": "q"}, {"a.x": 1, "b.y": "r"},
        {"a.x": 2, "b.y": "p"}, {"a.x": 2, "b.y": "q"}, {"a.x": 2, "b.y": "r"},
    ]  # fmt: skip


def test_zip_takes_the_ith_value_of_each_axis():
    spec = parse_sweep({"mode": "zip", "axes": {"a.x": [1, 2, 3], "b.y": [4, 5, 6]}}, "f")
    assert expand(spec) == [{"a.x": 1, "b.y": 4}, {"a.x": 2, "b.y": 5}, {"a.x": 3, "b.y": 6}]


def test_zip_of_unequal_axes_is_an_input_error():
    with pytest.raises(InputError, match=r"axes.yaml: invalid sweep: .*equal length.*a.x: 2"):
        parse_sweep({"mode": "zip", "axes": {"a.x": [1, 2], "b.y": [1]}}, "axes.yaml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"axes": {}}, "axes: .*at least 1"),
        ({"axes": {"a": []}}, "axes.a: needs at least one value"),
        ({"axes": {"a": [1]}, "mode": "random"}, "mode: .*'grid' or 'zip'"),
        ({"axes": {"a": [1]}, "constrains": []}, "constrains: unknown field; allowed: axes"),
        ([1, 2], "a sweep must be a mapping"),
    ],
)
def test_bad_axes_files_name_the_field(data, message):
    with pytest.raises(InputError, match=message):
        parse_sweep(data, "axes.yaml")


def test_constraints_and_infeasible_points_are_skipped_with_a_reason():
    spec = parse_sweep(
        {
            "axes": {"deployment.tensor_parallel": [1, 2, 3, 4], "deployment.replicas": [1, 2]},
            "constraints": ["deployment.tensor_parallel * deployment.replicas <= 4"],
        },
        "axes.yaml",
    )
    tasks, skipped = plan(_ctx(), spec, "axes.yaml")
    ran = [(t.overrides["deployment.tensor_parallel"], t.overrides["deployment.replicas"])
           for t in tasks]  # fmt: skip
    # TP 3 does not divide Llama-3.1-8B's 32 heads (infeasible); 4×2 breaks the constraint.
    assert ran == [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1)]
    reasons = {(s.overrides["deployment.tensor_parallel"], s.overrides["deployment.replicas"]):
               s.reason for s in skipped}  # fmt: skip
    assert set(reasons) == {(3, 1), (3, 2), (4, 2)}
    assert reasons[(3, 1)].startswith("infeasible:")
    assert "does not divide" in reasons[(3, 1)]
    assert "constraint" in reasons[(4, 2)]
    assert [t.index for t in tasks] == [0, 1, 2, 3, 6]


def test_infeasible_points_are_errors_when_not_skipped():
    spec = parse_sweep(
        {"axes": {"deployment.tensor_parallel": [1, 3]}, "skip_infeasible": False}, "axes.yaml"
    )
    with pytest.raises(InputError, match=r"point 1 \(deployment.tensor_parallel=3\).*divide"):
        plan(_ctx(), spec, "axes.yaml")


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"deployment.tensor_parallel": [1, "two"]}, r"point 1 \(deployment.tensor_parallel="
         r"'two'\).*deployment.tensor_parallel.*'two'"),
        ({"engine.max_num_seq": [8]}, r"axis engine.max_num_seq.*did you mean 'max_num_seqs'"),
        ({"engine.max_num_seqs": [8, 0]}, r"point 1 \(engine.max_num_seqs=0\).*greater than"),
    ],
)  # fmt: skip
def test_every_point_is_validated_before_anything_runs(axes, message):
    with pytest.raises(InputError, match=message):
        plan(_ctx(), parse_sweep({"axes": axes}, "axes.yaml"), "axes.yaml")


def test_keys_are_stable_distinct_and_ignore_the_name():
    spec = parse_sweep({"axes": {"engine.max_num_seqs": [8, 16, 8]}}, "axes.yaml")
    first, _ = plan(_ctx(), spec, "axes.yaml")
    again, _ = plan(_ctx(), spec, "axes.yaml")
    renamed, _ = plan(_ctx({**BASE, "name": "other", "description": "x"}), spec, "axes.yaml")
    keys = [t.key for t in first]
    assert keys == [t.key for t in again] == [t.key for t in renamed]
    assert keys[0] == keys[2] != keys[1]  # the same resolved scenario, the same key
    reseeded, _ = plan(_ctx({**BASE, "seed": 4}), spec, "axes.yaml")
    assert not set(keys) & {t.key for t in reseeded}


def test_a_default_written_out_has_the_same_key_as_the_default():
    # engine.block_size 16 is the default: the resolved scenarios are equal.
    spec = parse_sweep({"axes": {"engine.block_size": [16]}}, "axes.yaml")
    explicit, _ = plan(_ctx(), spec, "axes.yaml")
    base = parse_sweep({"axes": {"seed": [BASE["seed"]]}}, "axes.yaml")
    default, _ = plan(_ctx(), base, "axes.yaml")
    assert explicit[0].key == default[0].key


def test_trace_file_content_is_part_of_the_key(tmp_path: Path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,num_prompt_tokens,num_output_tokens\n0,10,5\n1,10,5\n")
    raw = {k: v for k, v in BASE.items() if k != "workload"}
    raw["workload"] = {"trace": {"path": str(trace)}}
    spec = parse_sweep({"axes": {"seed": [0]}}, "axes.yaml")
    (before,), _ = plan(_ctx(raw), spec, "axes.yaml")
    trace.write_text("arrival_s,num_prompt_tokens,num_output_tokens\n0,10,5\n2,10,5\n")
    (after,), _ = plan(_ctx(raw), spec, "axes.yaml")
    assert isinstance(before, PointTask)
    assert before.key != after.key
    assert not isinstance(before, SkippedPoint)


BAD_AXES_FILES = {
    "deep": (b"axes:\n  seed: " + b"[" * 1000 + b"1" + b"]" * 1000 + b"\n", "nested 1000 levels"),
    "deep-block": (
        b"axes:\n  seed:\n" + b"".join(b"  " * (i + 2) + b"- \n" for i in range(80)),
        "nested more than 64 levels deep",
    ),
    "latin-1": ("axes:\n  hardware.gpu: [h100-sxm]  # café\n".encode("latin-1"), "not UTF-8"),
    "huge-int": (b"axes:\n  seed: [" + b"9" * 5000 + b"]\n", "axes.yaml|digits"),
    "inf": (b"axes:\n  workload.rate_scale: [1.0, .inf]\n", r"axes.workload.rate_scale\[1\]: inf"),
    "overflow": (b"axes:\n  workload.rate_scale: [1.0e+999]\n", "inf is not a finite number"),
    "nan": (b"axes:\n  workload.rate_scale: [.nan]\n", "nan is not a finite number"),
    "date": (b"axes:\n  name: [2024-01-01]\n", r"axes.name\[0\]: datetime.date.*quote dates"),
    "int-key": (b"axes:\n  deployment: [{1: 2}]\n", "key 1 is a int"),
    "alias-bomb": (
        b"a: &a [1,1,1,1,1,1,1,1,1,1]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode()
            for i in range(8)
        )
        + b"axes: {seed: *i}\n",
        "more than 1,000,000 values",
    ),
    "recursive-alias": (b"axes:\n  seed: &x [1, *x]\n", "nested more than 64 levels"),
    "not-a-mapping": (b"- 1\n- 2\n", "a sweep must be a mapping"),
    "invalid-yaml": (b"axes: [\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", list(BAD_AXES_FILES))
def test_bad_axes_files_are_input_errors_naming_the_file(tmp_path: Path, case: str):
    from infsim.sweep.spec import read_axes_file

    data, message = BAD_AXES_FILES[case]
    path = tmp_path / "axes.yaml"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as info:
        read_axes_file(path)
    assert str(path) in str(info.value)
    assert len(str(info.value)) < 1000


def test_points_are_enumerated_lazily():
    from infsim.sweep.points import iter_points

    spec = parse_sweep({"axes": {f"a{i}": list(range(30)) for i in range(5)}}, "axes.yaml")
    assert spec.num_points == 30**5
    first = next(iter_points(spec))
    assert first == {f"a{i}": 0 for i in range(5)}
