"""The console summary names what happened to the fleet (issue 16): replica failures, spot
preemptions, retries and scale events, and calls KV-cache preemptions by their name."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from infsim import api
from infsim.report.console import print_summary
from infsim.scenario.load import load_scenario

REPO = Path(__file__).resolve().parents[2]


def _text(name: str) -> str:
    result = api.run(load_scenario(REPO / "scenarios" / name))
    console = Console(record=True, width=200)
    print_summary(result.summary, name, console)
    return console.export_text()


def test_failures_retries_and_cold_starts_are_shown():
    text = _text("spot-failures.yaml")
    assert "4 replica failures, 3 spot preemptions (1 with notice)" in text
    assert "36 requests retried (36 retries), 0 failed (policy requeue)" in text
    assert "8 cold starts" in text
    assert "0 KV-cache preemptions" in text


def test_a_fixed_fleet_without_failures_shows_no_failure_line():
    text = _text("quickstart.yaml")
    assert "replica failures" not in text
    assert "KV-cache preemptions" in text
