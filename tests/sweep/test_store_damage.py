"""A store that cannot lie (issue 15): damaged point files are recomputed (and said so),
readers refuse damaged directories with exit 2, a second job cannot hide the first one's
results, a full disk stops the sweep with every finished point kept."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.sweep.job import load_base, run_sweep
from infsim.sweep.results import results_table
from infsim.sweep.spec import parse_sweep
from infsim.sweep.store import MANIFEST, ResultStore
from tests.sweep.test_store_resume import _deterministic

AXES = {"axes": {"engine.max_num_seqs": [4, 8, 16]}}


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def swept(base_scenario: Path) -> Path:
    """A finished three-point sweep directory."""
    ctx, _ = load_base(base_scenario)
    out = base_scenario.parent / "sweep"
    run_sweep(ctx, parse_sweep(AXES, "axes.yaml"), ResultStore(out))
    return out


def _point_files(sweep: Path) -> list[Path]:
    return sorted(p for p in (sweep / "points").iterdir() if not p.name.startswith("."))


DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"not parquet at all" * 10,
    "tail cut": lambda data: data[:-3],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_point_file_is_recomputed_and_the_run_says_so(
    swept: Path, base_scenario: Path, damage: str, capsys
):
    before = results_table(ResultStore(swept))
    victim = _point_files(swept)[1]
    victim.write_bytes(DAMAGE[damage](victim.read_bytes()))
    store = ResultStore(swept)
    valid, damaged = store.scan()
    assert victim.stem in damaged
    assert victim.stem not in valid
    capsys.readouterr()
    ctx, _ = load_base(base_scenario)
    _, outcome = run_sweep(ctx, parse_sweep(AXES, "axes.yaml"), store)
    assert outcome.executed == [victim.stem]
    assert victim.stem in outcome.recomputed
    assert "damaged point file(s) will be recomputed" in capsys.readouterr().err
    assert store.scan() == ({p.stem for p in _point_files(swept)}, {})
    pd.testing.assert_frame_equal(
        _deterministic(results_table(store)), _deterministic(before), check_dtype=False
    )


def test_the_sweep_command_reports_recomputed_points(swept: Path, base_scenario: Path, write_yaml):
    _point_files(swept)[0].write_bytes(b"")
    axes = write_yaml("axes.yaml", AXES)
    result = _invoke("sweep", base_scenario, "--axes", axes, "-o", swept, "--executor",
                     "serial", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 run now (1 damaged, recomputed)" in result.output


@pytest.mark.parametrize("command", ["results", "report"])
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("point-empty", r"damaged \(.*empty file"),
        ("point-truncated", r"damaged \(.*not a whole Parquet file"),
        ("manifest-truncated", r"sweep.json: line \d+: not valid JSON"),
        ("manifest-empty", "sweep.json: line 1: not valid JSON"),
        ("manifest-list", r"sweep.json: \(top level\): expected a mapping"),
        ("manifest-bad-key", r"sweep.json: points\[0\].key: expected a point key"),
        ("manifest-bad-points", "sweep.json: points: expected a list"),
        ("manifest-not-utf8", "sweep.json: line 1: the sweep manifest is not UTF-8"),
        ("manifest-deep", "nested 1,?000 levels deep|nested 1000 levels deep"),
        ("manifest-missing", "not a sweep directory|neither a run directory"),
        ("points-is-a-file", "points: is not a directory"),
    ],
)
def test_readers_refuse_a_damaged_sweep_directory_with_exit_2(
    swept: Path, command: str, damage: str, message: str
):
    manifest = swept / MANIFEST
    text = manifest.read_text()
    if damage == "point-empty":
        _point_files(swept)[0].write_bytes(b"")
    elif damage == "point-truncated":
        victim = _point_files(swept)[0]
        victim.write_bytes(victim.read_bytes()[:100])
    elif damage == "manifest-truncated":
        manifest.write_text(text[:10])
    elif damage == "manifest-empty":
        manifest.write_text("")
    elif damage == "manifest-list":
        manifest.write_text("[1, 2]")
    elif damage == "manifest-bad-key":
        data = json.loads(text)
        data["points"][0]["key"] = "../../etc/passwd"
        manifest.write_text(json.dumps(data))
    elif damage == "manifest-bad-points":
        manifest.write_text(json.dumps({**json.loads(text), "points": {"a": 1}}))
    elif damage == "manifest-not-utf8":
        manifest.write_bytes(b"\xff\xfe{")
    elif damage == "manifest-deep":
        manifest.write_text("[" * 1000 + "]" * 1000)
    elif damage == "manifest-missing":
        manifest.unlink()
    elif damage == "points-is-a-file":
        for p in _point_files(swept):
            p.unlink()
        (swept / "points").rmdir()
        (swept / "points").write_text("x")
    listing = sorted(p.name for p in swept.rglob("*")) if (swept / "points").is_dir() else None
    result = _invoke(command, swept)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    import re

    assert re.search(message, result.output), result.output
    if listing is not None:  # a reader deletes nothing and writes nothing
        assert sorted(p.name for p in swept.rglob("*")) == listing


def test_report_refuses_a_damaged_run_directory(tmp_path: Path):
    from tests.sweep.test_cli_sweep import EXAMPLE, SMALL

    run_dir = tmp_path / "run"
    assert _invoke("run", EXAMPLE, "-o", run_dir, "--quiet", *SMALL).exit_code == 0
    requests = run_dir / "requests.parquet"
    whole = requests.read_bytes()
    requests.write_bytes(whole[: len(whole) // 2])
    result = _invoke("report", run_dir)
    assert result.exit_code == 2, result.output
    # The run's completion marker records each file's size and checksum (report/read.py).
    assert "requests.parquet holds" in result.output
    assert "truncated or replaced" in result.output
    requests.write_bytes(whole)
    (run_dir / "timeline.parquet").unlink()
    result = _invoke("report", run_dir)
    assert result.exit_code == 2, result.output
    assert "timeline.parquet is missing" in result.output
    (run_dir / "summary.json").write_text('{"latency_s": ')
    result = _invoke("report", run_dir)
    assert result.exit_code == 2, result.output
    assert "not a complete infsim run" in result.output  # (timeline.parquet still gone)


def test_csv_into_a_missing_directory_exits_2_before_any_work(swept: Path, tmp_path: Path):
    target = tmp_path / "no" / "such" / "dir" / "r.csv"
    result = _invoke("results", swept, "--csv", target)
    assert result.exit_code == 2, result.output
    assert f"--csv {target}: the directory {target.parent} does not exist" in result.output
    assert _invoke("results", swept, "--csv", tmp_path).exit_code == 2  # a directory
    result = _invoke("report", swept, "-o", target)
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_a_full_disk_stops_the_sweep_with_exit_2_and_keeps_the_finished_points(
    base_scenario: Path, write_yaml, monkeypatch
):
    import infsim.sweep.store as store_module

    real_fsync = store_module.os.fsync
    calls = {"n": 0}

    def fsync_fills_the_disk(fd):
        calls["n"] += 1
        if calls["n"] > 3:  # the manifest and two points fit
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", fsync_fills_the_disk)
    out = base_scenario.parent / "full"
    axes = write_yaml("axes.yaml", {"axes": {"engine.max_num_seqs": [4, 8, 16, 32]}})
    result = _invoke("sweep", base_scenario, "--axes", axes, "-o", out, "--executor", "serial",
                     "--quiet")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output
    assert "every point stored before is kept" in result.output
    assert "Traceback" not in result.output
    store = ResultStore(out)
    valid, damaged = store.scan()
    assert len(valid) == 2
    assert damaged == {}
    assert not list(out.rglob(".tmp-*")), "a failed write leaves no temporary"
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    resumed = _invoke("sweep", base_scenario, "--axes", axes, "-o", out, "--executor",
                      "serial", "--quiet")  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
    assert "2 already stored, 2 run now" in resumed.output


def test_a_second_sweep_with_other_axes_is_refused_unless_forced(
    swept: Path, base_scenario: Path, write_yaml
):
    other = write_yaml("other.yaml", {"axes": {"deployment.tensor_parallel": [1, 2]}})
    before = (swept / MANIFEST).read_text()
    args = ["sweep", base_scenario, "--axes", other, "-o", swept, "--executor", "serial",
            "--quiet"]  # fmt: skip
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert "holds another job's results" in result.output
    assert "another directory (-o), or --force" in result.output
    assert (swept / MANIFEST).read_text() == before
    forced = _invoke(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert len(ResultStore(swept).stored_keys()) == 5  # the first sweep's points are kept
    # growing the axes is the same sweep, not a conflict
    grown = write_yaml("grown.yaml", {"axes": {"deployment.tensor_parallel": [1, 2, 4]}})
    again = _invoke("sweep", base_scenario, "--axes", grown, "-o", swept, "--executor",
                    "serial", "--quiet")  # fmt: skip
    assert again.exit_code == 0, again.output


def test_a_capacity_search_in_a_sweep_directory_is_refused(swept: Path, base_scenario: Path):
    result = _invoke("capacity", base_scenario, "--ttft-p99", "0.5", "-o", swept, "--quiet")
    assert result.exit_code == 2, result.output
    assert "a sweep of" in result.output
    assert "--force" in result.output


def test_a_second_job_is_refused_while_the_first_holds_the_directory(
    swept: Path, base_scenario: Path
):
    ctx, _ = load_base(base_scenario)
    store = ResultStore(swept)
    with store.lock(), pytest.raises(InputError, match=r"another infsim job \(pid \d+\)"):
        run_sweep(ctx, parse_sweep(AXES, "axes.yaml"), ResultStore(swept))
    _, outcome = run_sweep(ctx, parse_sweep(AXES, "axes.yaml"), store)  # released
    assert outcome.num_cached == 3
