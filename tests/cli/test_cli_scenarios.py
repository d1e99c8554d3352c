"""`infsim scenarios list|copy`: the shipped examples, copied with what they need."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from infsim import api, package_data
from infsim.cli import main

REPO = Path(__file__).resolve().parents[2]
NAMES = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_list_names_every_example_with_its_description():
    result = _invoke("scenarios", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(NAMES) >= 13
    for name in NAMES:
        description = yaml.safe_load((REPO / "scenarios" / f"{name}.yaml").read_text())[
            "description"
        ]
        assert any(line.startswith(f"{name} ") and description in line for line in lines), name
    assert f"{REPO / 'scenarios'} (source checkout)" in lines[-1]


def test_copy_then_run(tmp_path: Path):
    dest = tmp_path / "new" / "dir"  # created
    result = _invoke("scenarios", "copy", "llama8b-h100-calibrated", str(dest))
    assert result.exit_code == 0, result.output
    copied = dest / "llama8b-h100-calibrated.yaml"
    assert sorted(p.name for p in dest.iterdir()) == ["llama8b-h100-calibrated.yaml"]
    assert copied.read_text() == (REPO / "scenarios" / copied.name).read_text()
    spec = api.load_scenario(copied, ["workload.synthetic.num_requests=100"])
    run = api.run(spec, copied.parent)
    assert run.summary["requests"]["completed"] == 100
    assert run.resolved.scenario.calibration == "h100-vllm-0.19"


def test_copy_defaults_to_the_current_directory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("scenarios", "copy", "quickstart.yaml")  # the file name works too
    assert result.exit_code == 0, result.output
    assert (tmp_path / "quickstart.yaml").is_file()


def test_copy_brings_the_trace_and_rewrites_its_path(tmp_path: Path):
    result = _invoke("scenarios", "copy", "autoscaling-burst", str(tmp_path))
    assert result.exit_code == 0, result.output
    copied = tmp_path / "autoscaling-burst.yaml"
    data = yaml.safe_load(copied.read_text())
    assert data["workload"]["trace"]["path"] == "traces/burst_step.parquet"
    trace = tmp_path / "traces" / "burst_step.parquet"
    assert trace.read_bytes() == (REPO / "traces" / "burst_step.parquet").read_bytes()
    # comments survive; only the path changed
    original = (REPO / "scenarios" / copied.name).read_text()
    assert copied.read_text() == original.replace("../traces/", "traces/")
    spec = api.load_scenario(copied, ["workload.max_requests=200"])
    assert api.run(spec, tmp_path).summary["requests"]["total"] == 200


def test_copy_brings_the_sweep_axes_its_comments_name(tmp_path: Path):
    assert _invoke("scenarios", "copy", "sweep-llama8b", str(tmp_path)).exit_code == 0
    axes = tmp_path / "sweeps" / "llama8b-gpu-tp.axes.yaml"
    assert axes.read_text() == (REPO / "scenarios" / "sweeps" / axes.name).read_text()


@pytest.mark.parametrize("name", NAMES)
def test_every_copied_example_resolves(name: str, tmp_path: Path):
    assert _invoke("scenarios", "copy", name, str(tmp_path)).exit_code == 0
    copied = tmp_path / f"{name}.yaml"
    spec = api.load_scenario(copied)
    resolved, trace = api.prepare(spec, tmp_path, source=str(copied))
    assert trace.num_requests > 0
    assert resolved.scenario.name == spec.name
    # nothing the copy reads lies outside the destination
    trace = (spec.workload.trace.path if spec.workload.trace else None) or ""
    assert not trace.startswith(("/", "..")), trace


def test_copy_refuses_to_overwrite_without_force(tmp_path: Path):
    assert _invoke("scenarios", "copy", "quickstart", str(tmp_path)).exit_code == 0
    target = tmp_path / "quickstart.yaml"
    target.write_text("# mine\n")
    result = _invoke("scenarios", "copy", "quickstart", str(tmp_path))
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert "--force" in result.output
    assert "Traceback" not in result.output
    assert target.read_text() == "# mine\n"
    result = _invoke("scenarios", "copy", "quickstart", str(tmp_path), "--force")
    assert result.exit_code == 0, result.output
    assert target.read_text() == (REPO / "scenarios" / "quickstart.yaml").read_text()


def test_unknown_name_lists_the_choices(tmp_path: Path):
    result = _invoke("scenarios", "copy", "quickstrat", str(tmp_path))
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    message = result.output.strip()
    assert message.startswith("infsim: error: unknown example scenario 'quickstrat'")
    assert "did you mean 'quickstart'?" in message
    for name in NAMES:
        assert name in message
    assert "\n" not in message  # one paragraph
    assert not list(tmp_path.iterdir())


def test_examples_come_from_the_package_data_when_present(tmp_path: Path, monkeypatch):
    root = tmp_path / "_data"
    (root / "scenarios").mkdir(parents=True)
    (root / "traces").mkdir()
    shutil.copyfile(REPO / "traces" / "burst_step.parquet", root / "traces" / "burst_step.parquet")
    text = (REPO / "scenarios" / "autoscaling-burst.yaml").read_text()
    (root / "scenarios" / "only-here.yaml").write_text(text.replace("name: autoscaled", "name: x"))
    monkeypatch.setattr(package_data, "_resource_root", lambda: root)

    result = _invoke("scenarios", "list")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("only-here ")
    assert "quickstart" not in result.output
    assert f"{root / 'scenarios'} (package data)" in result.output

    dest = tmp_path / "dest"
    result = _invoke("scenarios", "copy", "only-here", str(dest))
    assert result.exit_code == 0, result.output
    assert (dest / "traces" / "burst_step.parquet").is_file()
    spec = api.load_scenario(dest / "only-here.yaml", ["workload.max_requests=50"])
    assert api.run(spec, dest).summary["requests"]["total"] == 50
