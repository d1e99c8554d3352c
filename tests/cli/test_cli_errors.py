"""The CLI's one error boundary (issue 15): InputError → exit 2, OSError → exit 2 with
the path, anything else → a short internal error naming a report file, exit 1."""

from __future__ import annotations

import tempfile
from pathlib import Path

from click.testing import CliRunner

from infsim import api
from infsim.cli import main, shorten

REPO = Path(__file__).resolve().parents[2]
SCENARIO = str(REPO / "scenarios/quickstart.yaml")


def test_an_unexpected_exception_is_an_internal_error_with_a_report(monkeypatch, tmp_path):
    def boom(*_args, **_kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(api, "run", boom)
    monkeypatch.setattr(api, "run_resolved", boom)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the report lands here
    result = CliRunner().invoke(main, ["run", SCENARIO, "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "internal error (RuntimeError: kaboom)" in result.output
    report = result.output.split("The traceback is in ")[1].strip()
    assert Path(report).parent == tmp_path
    assert "kaboom" in Path(report).read_text()
    assert "Traceback (most recent call last)" not in result.output


def test_an_os_error_names_the_path(monkeypatch, tmp_path):
    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", "/root/x.parquet")

    monkeypatch.setattr(api, "run", denied)
    monkeypatch.setattr(api, "run_resolved", denied)
    result = CliRunner().invoke(main, ["run", SCENARIO, "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "infsim: error: /root/x.parquet: Permission denied" in result.output


def test_long_messages_are_cut_in_the_middle():
    text = "a" * 1000 + "b" * 5000 + "c" * 1000
    short = shorten(text, 200)
    assert short.startswith("a" * 100)
    assert short.endswith("c" * 100)
    assert "6,800 characters left out" in short
    assert shorten("short") == "short"
