"""validation/apex.py's loader: APEX+'s per-rank request split and engine-reported lengths
against summary.csv (skipped without ../shared/data), and its rendering."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.validation.conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("validation_apex", REPO / "validation" / "apex.py")
apex = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apex)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    base = SHARED_DATA / apex.DATA
    if not (base / "summary.csv").is_file() or not (SHARED_DATA / apex.TRACES).is_dir():
        pytest.skip(f"APEX+ validation data not available ({base} is absent)")
    summary = pd.read_csv(base / "summary.csv").set_index("file", drop=False)
    return summary, pd.read_csv(base / "per_request_length_diffs.csv")


def _rank(data, file: str) -> tuple[pd.Series, pd.DataFrame | None]:
    summary, diffs = data
    run = summary.loc[file]
    return run, apex.rank_requests(SHARED_DATA, run, diffs)


@pytest.mark.parametrize(
    ("file", "rank", "replicas"),
    [
        ("llama_lmsys_05_validation_4DP2TP_1", 1, 4),
        ("llama_summarization_025_validation_2DP4TP_0", 0, 2),
        ("llama_creation_05_validation_8TP", 0, 1),
    ],
)
def test_rank_share_and_engine_lengths_match_summary(data, file, rank, replicas):
    run, req = _rank(data, file)
    trace = pd.read_csv(apex.trace_path(SHARED_DATA, "llama", run.workload, run.rate_rps))
    share = trace.iloc[rank::replicas]
    # round robin: every `replicas`-th trace request from `rank`, at its trace arrival
    assert list(req["request_id"]) == list(share["RequestID"])
    np.testing.assert_allclose(req["arrival_s"], share["StartTimeOffset"] / 1e9)
    assert share["ContextTokens"].sum() == run.trace_prompt_sum
    assert share["GeneratedTokens"].sum() == run.trace_output_sum
    # the diffs table logs all but the share's first request, which was served too
    assert req["logged"].sum() == run.num_requests_logged == len(share) - 1
    assert not req["logged"].iloc[0]
    # engine lengths = trace + diffs (+ the unlogged request's rest of the engine sums)
    assert req["prompt"].sum() == run.engine_prompt_sum
    assert req["output"].sum() == run.engine_output_sum
    assert (req["output"] >= 1).all()
    assert (req["output"] <= share["GeneratedTokens"].to_numpy()).all()  # no ignore_eos


def test_unstaged_rank_traces_are_not_guessed(data):
    # lmsys_025's per-rank files carry other request ids (and arrivals) than the staged trace
    assert _rank(data, "llama_lmsys_025_validation_4DP2TP_0")[1] is None
    assert _rank(data, "llama_creation_05_validation_2DP4TP_0")[1] is None


def test_predict_one_rank(data):
    _, req = _rank(data, "llama_lmsys_05_validation_4DP2TP_2")
    out = apex.predict(req, tp=2)
    assert 0 < out["ttft"] < out["e2e"]
    assert 0 < out["tpot"] < out["e2e"]


def test_section_note_when_data_absent(tmp_path):
    lines = apex.apex_section(tmp_path)
    assert lines[1] == f"## {apex.TITLE}"
    assert "section skipped" in lines[-1]


def test_medians_per_metric_and_tp():
    rows = pd.DataFrame({
        "run": ["a", "b", "c", "d"], "tp": [2, 2, 8, 8], "requests": [1, 1, 1, 0],
        "skipped": ["", "", "", "empty result file"],
        "ttft_err": [-10.0, 20.0, -30.0, np.nan], "tpot_err": [1.0, -3.0, 5.0, np.nan],
        "e2e_err": [2.0, np.nan, -4.0, np.nan],
    })  # fmt: skip
    med = apex.medians(rows)
    assert list(med.index) == ["all", "TP2", "TP8"]
    assert med.loc["all", "ttft"] == 20.0
    assert med.loc["TP2", "tpot"] == 2.0
    assert med.loc["TP2", "e2e"] == 2.0  # NaN (no E2E) left out
    assert med.loc["TP8", "e2e"] == 4.0
