"""Built-in calibrations come from the package data when it exists (an installed wheel),
else from the repository; the wheel's force-include list ships every table and trace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from infsim import api, package_data
from infsim.cli import main
from infsim.cost import store
from infsim.errors import InputError

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"


@pytest.fixture
def packaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package-data root holding one table, `pkg-h100` (a copy of h100-vllm-0.19)."""
    root = tmp_path / "_data"
    table = root / "calibration" / "pkg-h100"
    table.mkdir(parents=True)
    for name in ("ops.parquet", "meta.yaml"):
        shutil.copyfile(REPO / "calibration" / "h100-vllm-0.19" / name, table / name)
    monkeypatch.setattr(package_data, "_resource_root", lambda: root)
    return root


def test_source_checkout_reads_the_repository():
    # the tests run from the checkout (editable install): no infsim/_data
    assert package_data._resource_root() is None
    assert package_data.data_root().origin == "source checkout"
    assert store.builtin_dir() == REPO / "calibration"
    assert "h100-vllm-0.19" in store.builtin_names()
    assert store.resolve_calibration("h100-vllm-0.19", REPO) == REPO / "calibration" / (
        "h100-vllm-0.19"
    )


def test_calibrate_list_says_where_it_reads():
    result = CliRunner().invoke(main, ["calibrate", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"read from {REPO / 'calibration'} (source checkout)" in result.output


def test_package_data_wins_when_present(packaged: Path, tmp_path: Path):
    assert package_data.data_root() == package_data.DataRoot(packaged, "package data")
    assert store.builtin_dir() == packaged / "calibration"
    assert store.builtin_names() == ["pkg-h100"]
    assert store.resolve_calibration("pkg-h100", tmp_path) == packaged / "calibration" / (
        "pkg-h100"
    )
    # never a mix: with package data present, the repository's tables are not read
    with pytest.raises(InputError, match=r"read from .*_data/calibration \(package data\)"):
        store.resolve_calibration("h100-vllm-0.19", tmp_path)


def test_a_scenario_names_a_packaged_table(packaged: Path):
    spec = api.load_scenario(
        QUICKSTART, ["calibration=pkg-h100", "workload.synthetic.num_requests=50"]
    )
    result = api.run(spec, QUICKSTART.parent)
    assert result.summary["requests"]["completed"] == 50
    assert result.summary["calibration"], result.summary


def test_calibrate_list_reads_the_package_data(packaged: Path):
    result = CliRunner().invoke(main, ["calibrate", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "pkg-h100" in result.output
    assert "h100-vllm-0.19" not in result.output
    assert f"read from {packaged / 'calibration'} (package data)" in result.output


def test_missing_data_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(package_data, "REPO_ROOT", tmp_path)  # neither copy exists
    assert store.builtin_names() == []
    assert store.builtin_location() == f"{tmp_path / 'calibration'} (source checkout, missing)"
    with pytest.raises(InputError, match=r"built-in: \(none\), read from .*missing\)"):
        store.resolve_calibration("h100-vllm-0.19", tmp_path)


# -- the wheel's file list (pyproject.toml) ----------------------------------------------


def _force_include() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]


def _shipped(source: str) -> str | None:
    """Where the wheel puts a repository file, via its own entry or a folder's."""
    for src, dst in _force_include().items():
        if source == src or source.startswith(src + "/"):
            return dst + source[len(src) :]
    return None


def test_the_wheel_ships_every_builtin_table():
    tables = [p for p in (REPO / "calibration").iterdir() if (p / "meta.yaml").is_file()]
    assert len(tables) >= 7
    for table in tables:
        for name in ("ops.parquet", "meta.yaml"):
            source = f"calibration/{table.name}/{name}"
            assert _shipped(source) == f"infsim/_data/{source}", source
    # and nothing else from calibration/ (live/ scripts, README, build script)
    for src in _force_include():
        if src.startswith("calibration/"):
            assert src.endswith(("/ops.parquet", "/meta.yaml")), src


def test_the_wheel_ships_every_scenario_and_the_files_they_name():
    scenarios = sorted((REPO / "scenarios").rglob("*.yaml"))
    assert len(scenarios) >= 13
    for path in scenarios:
        rel = path.relative_to(REPO).as_posix()
        assert _shipped(rel) == f"infsim/_data/{rel}", rel
        data = yaml.safe_load(path.read_text())
        trace = ((data or {}).get("workload") or {}).get("trace") or {}
        if "path" in trace:  # the trace must land at the same relative place in the wheel
            target = (path.parent / trace["path"]).resolve().relative_to(REPO).as_posix()
            assert _shipped(target) == f"infsim/_data/{target}", (rel, target)
