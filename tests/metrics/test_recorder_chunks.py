"""Flushing ended requests and step rows in chunks during a run changes no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infsim import api
from infsim.metrics import recorder
from infsim.scenario.load import load_scenario
from infsim.sim import engine

REPO = Path(__file__).resolve().parents[2]


def _run(name: str, overrides: list[str]):
    spec = load_scenario(REPO / "scenarios" / name, overrides)
    result = api.run(spec, base_dir=REPO / "scenarios")
    summary = dict(result.summary)
    summary.get("simulation", {}).pop("wall_s", None)
    return result, json.dumps(summary, sort_keys=True, default=str)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("quickstart.yaml", ["workload.synthetic.num_requests=3000"]),
     ("spot-failures.yaml", []),
     ("disaggregated-1p1d.yaml", [])],
)  # fmt: skip
def test_small_chunks_give_the_same_outputs(monkeypatch, name: str, overrides: list[str]):
    whole, whole_summary = _run(name, overrides)
    monkeypatch.setattr(recorder, "REQUESTS_PER_CHUNK", 50)
    monkeypatch.setattr(recorder, "ROWS_PER_BATCH", 97)
    chunked, chunked_summary = _run(name, overrides)
    assert chunked.requests.equals(whole.requests)
    assert chunked.timeline.equals(whole.timeline)
    assert chunked_summary == whole_summary


def test_ended_requests_leave_memory_during_the_run(monkeypatch):
    """With 200-request chunks, requests are written out while the run goes: an
    interpreted subclass of the recorder (the engine builds it) spies on each flush (the
    compiled build calls its own methods directly, so patching one would see nothing)."""
    seen = []

    class SpyRecorder(recorder.Recorder):
        def _flush_ended(self) -> None:
            super()._flush_ended()
            seen.append((self.requests.num_rows, len(self._live)))

    monkeypatch.setattr(recorder, "REQUESTS_PER_CHUNK", 200)
    monkeypatch.setattr(engine, "Recorder", SpyRecorder)
    _run("quickstart.yaml", ["workload.synthetic.num_requests=3000"])
    assert seen
    assert seen[-1][0] > 2000  # most requests were flushed before the end
    assert max(live for _, live in seen) < 1000
