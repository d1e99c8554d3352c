"""A run directory is published as a whole and read back only when complete
(infsim.report.atomic, write, read; docs/outputs.md)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from infsim import api
from infsim.errors import InputError
from infsim.metrics.sink import TableSink
from infsim.report import atomic
from infsim.report.read import is_run_dir, read_run, verify_run
from infsim.report.write import MARKER

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"


def _result(seed: int, num_requests: int = 60) -> api.RunResult:
    spec = api.load_scenario(
        QUICKSTART,
        (f"seed={seed}", f"workload.synthetic.num_requests={num_requests}"),
    )
    return api.run(spec, QUICKSTART.parent)


@pytest.fixture(scope="module")
def runs() -> tuple[api.RunResult, api.RunResult]:
    return _result(1), _result(2, 80)


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir() if p.name.startswith("."))


def test_written_run_reads_back_complete(tmp_path: Path, runs) -> None:
    out = tmp_path / "run"
    runs[0].write(out)
    assert is_run_dir(out)
    marker = json.loads((out / MARKER).read_text())
    assert marker["format"] == "infsim-run"
    assert set(marker["files"]) == {
        "requests.parquet", "timeline.parquet", "fleet_timeline.parquet",
        "scenario.resolved.yaml", "summary.json",
    }  # fmt: skip
    run = read_run(out)
    assert run.requests.num_rows == 60
    assert run.summary["requests"]["total"] == 60
    assert run.fleet_timeline is not None
    assert "llama" in run.resolved_scenario
    assert _siblings(out) == []  # no temporary directory left


def test_a_new_run_replaces_the_earlier_one_as_a_whole(tmp_path: Path, runs) -> None:
    out = tmp_path / "run"
    runs[0].write(out)
    (out / "report.html").write_text("<html>old report</html>")
    (out / "disaggregation_timeline.parquet").write_bytes(b"from an older run")
    runs[1].write(out)
    assert not (out / "report.html").exists()
    assert not (out / "disaggregation_timeline.parquet").exists()
    assert read_run(out).requests.num_rows == 80
    assert _siblings(out) == []


def test_same_input_same_bytes(tmp_path: Path, runs) -> None:
    runs[0].write(tmp_path / "a")
    runs[0].write(tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_symlinks_in_an_earlier_run_are_never_written_through(tmp_path: Path, runs) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "run"
    runs[0].write(out)
    for name in ("summary.json", "requests.parquet"):
        (out / name).unlink()
        (out / name).symlink_to(victim)
    with pytest.raises(InputError, match=r"requests.parquet cannot be read \(a symbolic link\)"):
        verify_run(out)
    runs[1].write(out)
    assert victim.read_text() == "keep me"
    assert not (out / "summary.json").is_symlink()
    assert read_run(out).requests.num_rows == 80


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.symlink_to(p.parent / "elsewhere", target_is_directory=True),
         "is a symbolic link"),
        (lambda p: p.write_text("a file"), "exists and is not a directory"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("mine")),
         r"holds files that are not part of an infsim run \(notes.txt\)"),
        (lambda p: (p.mkdir(), (p / "summary.json").mkdir()), "summary.json"),
    ],
)  # fmt: skip
def test_targets_that_cannot_be_replaced_safely_are_refused(
    tmp_path: Path, runs, setup, message: str
) -> None:
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "run"
    setup(out)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match=message):
        runs[0].write(out)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written, deleted


@pytest.mark.skipif(not os.path.ismount("/proc"), reason="needs a mount point: /proc")
def test_a_mount_point_is_refused(runs) -> None:
    with pytest.raises(InputError, match="/proc: is a mount point"):
        runs[0].write(Path("/proc"))


def test_an_unwritable_parent_says_why(tmp_path: Path, runs, monkeypatch) -> None:
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if ".infsim-tmp-" in self.name:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(InputError) as caught:
        runs[0].write(tmp_path / "run")
    text = str(caught.value)
    assert "could not create a temporary directory: Permission denied" in text
    assert f"in {tmp_path}, then renamed into place" in text
    assert "was not created" in text


def test_the_current_directory_is_refused(tmp_path: Path, runs, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="is the current directory"):
        runs[0].write(Path("."))
    with pytest.raises(InputError, match="is the current directory"):
        runs[0].write(tmp_path.parent)
    with pytest.raises(InputError, match="file-system root"):
        runs[0].write(Path("/"))


@pytest.mark.parametrize("earlier", [True, False])
def test_disk_full_leaves_the_earlier_run_or_nothing(
    tmp_path: Path, runs, monkeypatch, earlier: bool
) -> None:
    out = tmp_path / "run"
    if earlier:
        runs[0].write(out)
    before = _files(out) if earlier else None
    real = TableSink.write_to
    calls = []

    def full(sink, path):
        calls.append(path.name)
        if len(calls) == 2:  # the second file: one already written into the new directory
            real(sink, path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(sink, path)

    monkeypatch.setattr(TableSink, "write_to", full)
    with pytest.raises(InputError) as caught:
        runs[1].write(out)
    text = str(caught.value)
    assert "could not write timeline.parquet: no space left on the device" in text
    assert ("still holds the earlier run" if earlier else "was not created") in text
    assert "\n" not in text
    assert (_files(out) if earlier else None) == before
    assert not out.exists() or read_run(out).requests.num_rows == 60
    assert _siblings(out) == []


def test_an_interrupt_while_writing_leaves_the_earlier_run(tmp_path: Path, runs,
                                                           monkeypatch) -> None:  # fmt: skip
    out = tmp_path / "run"
    runs[0].write(out)
    before = _files(out)

    def interrupted(sink, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(TableSink, "write_to", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runs[1].write(out)
    assert _files(out) == before
    assert _siblings(out) == []


def test_without_an_atomic_exchange_the_swap_still_replaces(tmp_path: Path, runs,
                                                           monkeypatch) -> None:  # fmt: skip
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "run"
    runs[0].write(out)
    runs[1].write(out)
    assert read_run(out).requests.num_rows == 80
    assert _siblings(out) == []


def test_siblings_of_killed_writers_are_removed_live_ones_kept(tmp_path: Path, runs) -> None:
    out = tmp_path / "run"
    host = atomic._host()
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".run.infsim-tmp-{host}-{dead}-0123abcd"
    live = tmp_path / f".run.infsim-tmp-{host}-{os.getpid()}-0123abcd"
    other_host = tmp_path / f".run.infsim-old-ffffff-{dead}-0123abcd"
    other_target = tmp_path / f".runs.infsim-tmp-{host}-{dead}-0123abcd"
    for path in (stale, live, other_host, other_target):
        path.mkdir()
        (path / "requests.parquet").write_bytes(b"half")
    if host == "ffffff":  # pragma: no cover
        pytest.skip("this host's hash collides with the test's other host")
    runs[0].write(out)
    assert not stale.exists()
    for kept in (live, other_host, other_target):
        assert kept.exists(), kept.name


# -- readers refuse incomplete or damaged runs ---------------------------------------------


def _damage_truncate(out: Path) -> None:
    data = (out / "requests.parquet").read_bytes()
    (out / "requests.parquet").write_bytes(data[: len(data) // 2])


def _damage_mix(out: Path, other: Path) -> None:
    shutil.copy(other / "requests.parquet", out / "requests.parquet")


def _damage_flip(out: Path) -> None:
    data = bytearray((out / "summary.json").read_bytes())
    data[10] ^= 1
    (out / "summary.json").write_bytes(bytes(data))


DAMAGES = {
    "no marker": (lambda out, _: (out / MARKER).unlink(), f"{MARKER} is missing"),
    "truncated": (lambda out, _: _damage_truncate(out), "truncated or replaced"),
    "mixed with another run": (_damage_mix, "requests.parquet holds"),
    "flipped byte": (lambda out, _: _damage_flip(out), "does not match its checksum"),
    "file missing": (lambda out, _: (out / "timeline.parquet").unlink(),
                     "timeline.parquet is missing"),
    "marker not JSON": (lambda out, _: (out / MARKER).write_text("{oops"), "unreadable"),
    "marker not UTF-8": (lambda out, _: (out / MARKER).write_bytes(b"\xff\xfe"), "UTF-8"),
    "marker of something else": (lambda out, _: (out / MARKER).write_text('{"files": {}}'),
                                 "not an infsim run marker"),
    "marker lists a path": (
        lambda out, _: (out / MARKER).write_text(json.dumps(
            {"format": "infsim-run", "version": 1,
             "files": {"../x": {"bytes": 1, "sha256": "0"}}})),
        "lists '../x' wrongly"),
    "marker from the future": (
        lambda out, _: (out / MARKER).write_text(json.dumps(
            {"format": "infsim-run", "version": 99, "files": {}})),
        "run marker version 99"),
    "marker lists too little": (
        lambda out, _: (out / MARKER).write_text(json.dumps(
            {"format": "infsim-run", "version": 1, "files": {}})),
        "does not list requests.parquet"),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_runs_are_refused_with_one_paragraph(tmp_path: Path, runs, damage: str) -> None:
    out, other = tmp_path / "run", tmp_path / "other"
    runs[0].write(out)
    runs[1].write(other)
    harm, message = DAMAGES[damage]
    harm(out, other)
    with pytest.raises(InputError) as caught:
        read_run(out)
    text = str(caught.value)
    assert message in text
    assert text.startswith(f"{out}: ")
    assert "\n" not in text


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such run directory"):
        read_run(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is not a directory"):
        read_run(tmp_path / "f")
    assert not is_run_dir(tmp_path)
