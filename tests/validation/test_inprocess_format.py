"""The `vllm-inprocess` format: per-request `RequestOutput.metrics` of an in-process vLLM run
(V1 RequestStateStats and V0 RequestMetrics), its bad-input errors, auto-detection, and the
committed live run of calibration/live/inprocess.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.validation import validate
from infsim.validation.formats import detect_format, load_measured

REPO = Path(__file__).resolve().parents[2]
LIVE_RUN = REPO / "validation" / "live" / "inprocess" / "run.jsonl"
SCENARIO = REPO / "scenarios" / "vllm-cpu-tiny-llama.yaml"


def v1_row(i: int, **metrics) -> dict:
    """A V1 row: wall-clock arrival at 1000 + i, engine-core monotonic clock near 50 + i."""
    base = {
        "num_generation_tokens": 4,
        "num_preemptions": 0,
        "arrival_time": 1000.0 + i,
        "queued_ts": 50.01 + i,
        "scheduled_ts": 50.02 + i,
        "first_token_ts": 50.1 + i,
        "last_token_ts": 50.4 + i,
        "first_token_latency": 0.125 + 0.01 * i,
        "is_corrupted": False,
    }
    base.update(metrics)
    return {
        "request_id": str(i),
        "model": "tiny-llama",
        "num_prompt_tokens": 32,
        "num_output_tokens": 4,
        "metrics": base,
    }


def v0_row(i: int, **metrics) -> dict:
    base = {
        "arrival_time": 2000.0 + 0.5 * i,
        "last_token_time": 2000.75 + 0.5 * i,
        "first_scheduled_time": 2000.01 + 0.5 * i,
        "first_token_time": 2000.2 + 0.5 * i,
        "time_in_queue": 0.01,
        "finished_time": 2000.8 + 0.5 * i,
        "scheduler_time": 0.001,
        "model_forward_time": None,
        "model_execute_time": None,
    }
    base.update(metrics)
    return {"request_id": f"r{i}", "num_prompt_tokens": 16, "num_output_tokens": 5, "metrics": base}


@pytest.fixture
def write_jsonl(tmp_path: Path):
    def write(rows: list, name: str = "run.jsonl", blank_lines: bool = False) -> Path:
        path = tmp_path / name
        sep = "\n\n" if blank_lines else "\n"
        path.write_text(sep.join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
        return path

    return write


def test_v1_rows_map_to_seconds_exactly(write_jsonl):
    rows = [v1_row(0), v1_row(1), v1_row(2)]
    rows[2]["num_output_tokens"] = 0  # aborted before its first token: failed
    rows[2]["metrics"].update(first_token_ts=0.0, last_token_ts=0.0, first_token_latency=0.0)
    run = load_measured(write_jsonl(rows))
    got = run.requests
    assert run.format == "vllm-inprocess"
    assert run.model == "tiny-llama"
    assert (run.max_concurrency, run.request_rate_per_s) == (None, None)
    assert run.replayable
    assert got.start_s.tolist() == [1000.0, 1001.0, 1002.0]
    assert got.ttft_s[:2].tolist() == [0.125, 0.125 + 0.01]
    assert got.e2e_s[0] == 0.125 + (50.4 - 50.1)
    assert got.e2e_s[1] == (0.125 + 0.01) + (50.4 + 1 - (50.1 + 1))
    assert math.isnan(got.ttft_s[2])
    assert math.isnan(got.e2e_s[2])
    assert got.failed.tolist() == [False, False, True]
    assert got.num_input_tokens.tolist() == [32, 32, 32]
    assert got.num_output_tokens.tolist() == [4, 4, 0]
    assert got.itl_s is None
    assert (run.num_completed, run.num_failed) == (2, 1)
    assert run.duration_s == 1001.0 + got.e2e_s[1] - 1000.0
    assert any("first_token_latency (front-end wall clock)" in note for note in run.notes)
    assert any("ITL is not compared" in note for note in run.notes)
    assert not any("lower bound" in note for note in run.notes)


def test_v1_without_first_token_latency_uses_the_engine_core_lower_bound(write_jsonl):
    old = v1_row(0)
    del old["metrics"]["first_token_latency"]  # V1 releases before the field existed
    zero = v1_row(1, first_token_latency=0.0)
    run = load_measured(write_jsonl([old, zero, v1_row(2)]))
    assert run.requests.ttft_s[0] == 50.1 - 50.01
    assert run.requests.e2e_s[0] == (50.1 - 50.01) + (50.4 - 50.1)
    assert run.requests.ttft_s[1] == (50.1 + 1) - (50.01 + 1)
    assert run.requests.ttft_s[2] == 0.125 + 0.02
    assert any(n.startswith("2 of 3 rows lack metrics.first_token_latency") for n in run.notes)


def test_v0_rows_are_wall_clock_differences(write_jsonl):
    no_finish = v0_row(1, finished_time=None)
    run = load_measured(write_jsonl([v0_row(0), no_finish], blank_lines=True))
    got = run.requests
    assert run.model is None
    assert got.start_s.tolist() == [2000.0, 2000.5]
    assert got.ttft_s.tolist() == [2000.2 - 2000.0, 2000.7 - 2000.5]
    assert got.e2e_s[0] == 2000.8 - 2000.0  # finished_time
    assert got.e2e_s[1] == 2001.25 - 2000.5  # last_token_time where finished_time is null
    assert got.failed.tolist() == [False, False]
    assert any("V0 run" in note for note in run.notes)


def test_token_id_lists_stand_in_for_counts(write_jsonl):
    row = v1_row(0)
    del row["num_prompt_tokens"], row["num_output_tokens"]
    row["prompt_token_ids"] = list(range(7))
    row["output_token_ids"] = [5, 6, 7]
    run = load_measured(write_jsonl([row]))
    assert run.requests.num_input_tokens.tolist() == [7]
    assert run.requests.num_output_tokens.tolist() == [3]
    bad = v1_row(0) | {"output_token_ids": [1, 2]}
    with pytest.raises(InputError, match=r"line 1: num_output_tokens is 4 but output_token_ids"):
        load_measured(write_jsonl([bad]))


def _error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_measured(path, "vllm-inprocess")
    return str(info.value)


@pytest.mark.parametrize(
    ("field", "line", "expected"),
    [
        ("first_token_ts", 2, "line 2: metrics.first_token_ts is missing"),
        ("last_token_ts", 3, "line 3: metrics.last_token_ts is missing"),
        ("arrival_time", 1, "line 1: metrics.arrival_time is missing"),
    ],
)
def test_missing_v1_field_names_file_line_and_field(write_jsonl, field, line, expected):
    rows = [v1_row(i) for i in range(3)]
    del rows[line - 1]["metrics"][field]
    path = write_jsonl(rows)
    message = _error(path)
    assert message.startswith(f"{path}: {expected}")
    assert "dataclasses.asdict" in message  # says what a row must hold
    assert "\n" not in message


def test_missing_v0_field_and_null_metrics(write_jsonl):
    rows = [v0_row(0), v0_row(1)]
    del rows[1]["metrics"]["first_token_time"]
    assert "line 2: metrics.first_token_time is missing" in _error(write_jsonl(rows))
    null = v1_row(0) | {"metrics": None}
    message = _error(write_jsonl([null]))
    assert "line 1: metrics is missing or null" in message
    assert "disable_log_stats=False" in message
    count = v1_row(0)
    del count["num_prompt_tokens"]
    assert "line 1: num_prompt_tokens (or prompt_token_ids) is missing" in _error(
        write_jsonl([count])
    )


def test_mixed_layouts_are_refused(write_jsonl):
    message = _error(write_jsonl([v1_row(0), v1_row(1), v0_row(2)]))
    assert "line 3: metrics has the vLLM V0 RequestMetrics" in message
    assert "line 1 has the vLLM V1 RequestStateStats" in message
    both = v1_row(0)
    both["metrics"]["first_token_time"] = 1.0
    assert "line 1: metrics mixes V1 fields" in _error(write_jsonl([both]))
    neither = v1_row(0) | {"metrics": {"arrival_time": 1.0}}
    assert "line 1: metrics has neither layout's fields" in _error(write_jsonl([neither]))


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (v1_row(1, first_token_latency=-0.5), "line 2: metrics.first_token_latency is -0.5 s"),
        (v1_row(1, last_token_ts=49.0), "line 2: metrics.last_token_ts − metrics.first_token_ts"),
        (
            v1_row(1, first_token_latency=0.0, queued_ts=60.0),
            "line 2: TTFT = metrics.first_token_ts − metrics.queued_ts is",
        ),
        (v0_row(1, first_token_time=1999.0), "line 2: TTFT = metrics.first_token_time −"),
        (v0_row(1, finished_time=2000.6), "line 2: metrics.finished_time − metrics.first_token"),
    ],
)
def test_negative_durations_name_the_line(write_jsonl, row, expected):
    first = v1_row(0) if "queued_ts" in row["metrics"] else v0_row(0)
    message = _error(write_jsonl([first, row]))
    assert expected in message
    assert "must be finite and ≥ 0" in message


def test_non_finite_and_non_numeric_values(write_jsonl):
    # json.dumps writes NaN/Infinity tokens, which Python's json reads back
    assert "line 1: metrics.first_token_ts is nan; expected a finite" in _error(
        write_jsonl([v1_row(0, first_token_ts=float("nan"))])
    )
    assert "line 1: metrics.last_token_ts is 'soon'; expected a number" in _error(
        write_jsonl([v1_row(0, last_token_ts="soon")])
    )
    assert "line 1: num_output_tokens is -1" in _error(
        write_jsonl([v1_row(0) | {"num_output_tokens": -1}])
    )


def test_duplicate_ids_unfinished_rows_and_model_mismatch(write_jsonl):
    assert "line 2: request_id '0' repeats line 1" in _error(write_jsonl([v1_row(0), v1_row(0)]))
    assert "line 1: finished is false" in _error(write_jsonl([v1_row(0) | {"finished": False}]))
    other = v1_row(1) | {"model": "other"}
    assert "line 2: model is 'other' but line 1 says 'tiny-llama'" in _error(
        write_jsonl([v1_row(0), other])
    )
    assert "line 2: request_id is None" in _error(
        write_jsonl([v1_row(0), v1_row(1) | {"request_id": None}])
    )


def test_empty_and_broken_files(write_jsonl, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert "the file is empty" in _error(empty)
    assert "line 2: not valid JSON" in _error(write_jsonl([v1_row(0), "{not json"]))
    assert "line 1: expected a JSON object" in _error(write_jsonl(["[1, 2]"]))
    with pytest.raises(InputError, match="holds one run; --run must be 0"):
        load_measured(write_jsonl([v1_row(0)]), "vllm-inprocess", run_index=1)


def test_auto_detection(write_jsonl, tmp_path):
    assert detect_format(write_jsonl([v1_row(0)], "a.jsonl")) == "vllm-inprocess"
    assert detect_format(write_jsonl([v0_row(0)], "b.jsonl")) == "vllm-inprocess"
    # a first line longer than the sniffed head (long prompt token ids before metrics)
    long = {"request_id": "0", "prompt_token_ids": list(range(5000)), **v1_row(0)}
    del long["num_prompt_tokens"]
    assert detect_format(write_jsonl([long], "c.jsonl")) == "vllm-inprocess"
    assert load_measured(tmp_path / "c.jsonl").requests.num_input_tokens.tolist() == [5000]
    no_metrics = tmp_path / "d.jsonl"
    no_metrics.write_text(json.dumps({"request_id": "0", "metrics": {"x": 1}}) + "\n")
    with pytest.raises(InputError, match="cannot tell which benchmark"):
        detect_format(no_metrics)


def test_cli_reports_a_bad_row_without_traceback(write_jsonl):
    rows = [v1_row(0), v1_row(1)]
    del rows[1]["metrics"]["first_token_ts"]
    out = CliRunner().invoke(
        main, ["validate", str(write_jsonl(rows)), "--scenario", str(SCENARIO)]
    )
    assert out.exit_code == 2
    assert "line 2: metrics.first_token_ts is missing" in out.output
    assert "Traceback" not in out.output


@pytest.fixture
def live_run() -> Path:
    if not LIVE_RUN.is_file():
        pytest.skip(f"the committed in-process live run is absent ({LIVE_RUN})")
    return LIVE_RUN


def test_committed_live_run_reads_and_replays(live_run):
    meta = json.loads((live_run.parent / "meta.json").read_text())
    raw = [json.loads(line) for line in live_run.read_text().splitlines()]
    run = load_measured(live_run)
    rows = run.requests
    n = meta["schedule"]["num_requests"]
    assert detect_format(live_run) == "vllm-inprocess"
    assert run.model == "../shared/live/tiny-llama"
    assert rows.num_requests == n == meta["num_finished"]
    assert not rows.failed.any()
    assert (rows.num_input_tokens == meta["schedule"]["input_len"]).all()
    low, high = meta["schedule"]["output_len_uniform"]
    assert ((rows.num_output_tokens >= low) & (rows.num_output_tokens <= high)).all()
    assert (rows.ttft_s > 0).all()
    assert (rows.e2e_s > rows.ttft_s).all()
    assert not any("lower bound" in note for note in run.notes)
    # arrival_time is the scheduled wall-clock arrival, t0 + a_i (to float rounding)
    scheduled = np.asarray([r["scheduled_arrival_s"] for r in raw])
    np.testing.assert_allclose(rows.start_s - meta["t0_unix_s"], scheduled, atol=1e-5)
    result = validate(live_run, SCENARIO)
    assert result.run["replayed"] is True
    assert result.run["num_requests_simulated"] == n
    assert "itl_p50" not in result.metrics
    assert {"ttft_p50", "tpot_p50", "e2e_p50", "output_tokens_per_s"} <= set(result.metrics)
