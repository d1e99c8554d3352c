"""Loaders on small hand-written files: the formats without a staged real file, and every
bad-input error (each must name the file, the row and what is allowed)."""

from __future__ import annotations

import json

import pytest

from infsim.errors import InputError
from infsim.workload.loaders import detect_format, load_trace

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
BURSTGPT_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_burstgpt_fixture(tmp_path):
    """No real BurstGPT file is staged (Git-LFS / release asset); this fixture follows the
    format in shared/data/traces/README.md: Timestamp in seconds from collection start,
    Model ChatGPT/GPT-4, Log Type 'Conversation log'/'API log', 0 response tokens = failure,
    optional Session ID and Elapsed time columns (release 2.x)."""
    path = write(
        tmp_path,
        "burst.csv",
        BURSTGPT_HEADER.rstrip("\n") + ",Session ID,Elapsed time\n"
        "5,ChatGPT,472,18,490,Conversation log,11,0.9\n"
        "45,ChatGPT,1087,0,1087,Conversation log,11,0.0\n"
        "118,GPT-4,417,276,693,API log,12,7.5\n",
    )
    assert detect_format(path) == "burstgpt"
    with pytest.raises(InputError, match=r"burst\.csv: line 3: 'Response tokens' is 0") as info:
        load_trace(path)
    assert "drop_zero_output" in str(info.value)
    trace = load_trace(path, drop_zero_output=True)
    assert trace.arrival_s.tolist() == [0.0, 113.0]
    assert trace.num_prompt_tokens.tolist() == [472, 417]
    assert trace.session_ids() == [11, 12]
    assert trace.request_id.tolist() == [0, 1]
    assert trace.notes == ("dropped 1 of 3 rows with 'Response tokens' is 0 (a failed request) "
                           "(first at line 3)",)  # fmt: skip


def test_azure_zero_output_needs_opt_in(tmp_path):
    path = write(tmp_path, "az.csv", AZURE_HEADER + "2023-11-16 18:15:46.6805900,374,0\n"
                 "2023-11-16 18:15:50.9951690,396,109\n")  # fmt: skip
    with pytest.raises(InputError, match=r"az\.csv: line 2: GeneratedTokens is 0"):
        load_trace(path)
    trace = load_trace(path, drop_zero_output=True)
    assert trace.num_requests == 1
    assert trace.arrival_s.tolist() == [4.314579]
    assert "dropped 1 of 2 rows" in trace.notes[0]


ROW1 = "2023-11-16 18:15:46.68,374,44\n"


@pytest.mark.parametrize(
    ("row2", "message"),
    [
        ("yesterday,1,1", r"line 3: column 'TIMESTAMP'.*'yesterday'"),
        ("2023-11-16 18:15:40.00,3,1", r"line 3: column 'arrival_s'.*sorted"),
        ("2023-11-16 18:15:47.00,-3,1", r"line 3: column 'num_prompt_tokens' is -3; must be >= 1"),
        ("2023-11-16 18:15:47.00,abc,1", r"line 3: column 'ContextTokens' is 'abc'; expected a"),
        ("2023-11-16 18:15:47.00,,1", r"line 3: column 'ContextTokens' is None"),
    ],
)
def test_azure_bad_rows(tmp_path, row2, message):
    path = write(tmp_path, "az.csv", AZURE_HEADER + ROW1 + row2 + "\n")
    with pytest.raises(InputError, match=message) as info:
        load_trace(path, "azure")
    assert str(info.value).startswith(str(path))


def test_missing_column_names_header(tmp_path):
    path = write(tmp_path, "az.csv", "TIMESTAMP,ContextTokens,GenTokens\nx,1,1\n")
    with pytest.raises(InputError, match=r"missing column\(s\) 'GeneratedTokens'"):
        load_trace(path, "azure")


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_trace(tmp_path / "nope.csv")
    empty = write(tmp_path, "empty.csv", "")
    with pytest.raises(InputError, match="empty"):
        load_trace(empty)
    with pytest.raises(InputError, match="empty"):
        load_trace(empty, "azure")
    header_only = write(tmp_path, "h.csv", AZURE_HEADER)
    with pytest.raises(InputError, match="no requests"):
        load_trace(header_only)
    with pytest.raises(InputError, match="empty"):
        load_trace(write(tmp_path, "e.jsonl", ""), "mooncake")


def test_unknown_format_lists_known(tmp_path):
    path = write(tmp_path, "x.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match="cannot tell the trace format"):
        load_trace(path)
    with pytest.raises(InputError, match=r"did you mean 'mooncake'"):
        load_trace(path, "moncake")


def test_mooncake_bad_lines(tmp_path):
    good = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n'
    cases = {
        '{"timestamp": 5, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n'
        '{"timestamp": 3, "input_length": 600, "output_length": 5, "hash_ids": [0]}\n':
            r"line 3: column 'arrival_s'.*earlier",
        '{"timestamp": 5, "input_length": 600, "output_length": 0, "hash_ids": [0]}\n':
            r"line 2: column 'num_output_tokens' is 0; must be >= 1",
        '{"timestamp": 5, "input_length": 600, "output_length": 5, "hash_ids": [0, 1, 2]}\n':
            r"line 2: column 'prefix_hash_ids' has 3 block ids; at most .* = 2",
        '{"timestamp": 5, "input_length": 600, "hash_ids": [0]}\n':
            r"line 2: 'output_length' is missing",
        '{"timestamp": 5, "input_length": 600,\n': r"line 2: not valid JSON",
    }  # fmt: skip
    for tail, message in cases.items():
        path = write(tmp_path, "m.jsonl", good + tail)
        with pytest.raises(InputError, match=message):
            load_trace(path, "mooncake")


def bench_result(**overrides):
    result = {
        "backend": "vllm",
        "start_times": [100.5, 100.0, 101.0],
        "input_lens": [10, 20, 30],
        "output_lens": [5, 0, 7],
        "errors": ["", "ReadTimeout", ""],
    }
    return json.dumps({**result, **overrides})


def test_vllm_bench_detailed(tmp_path):
    """Hand-written --save-detailed result (no real one is staged; FORMATS.md §1.1)."""
    path = write(tmp_path, "bench.json", bench_result())
    assert detect_format(path) == "vllm-bench"
    with pytest.raises(InputError, match=r"request 1: the request failed.*drop_failed"):
        load_trace(path)
    trace = load_trace(path, drop_failed=True)
    # The clock starts at the first request sent (100.0), failed or not.
    assert trace.arrival_s.tolist() == [0.5, 1.0]
    assert trace.request_id.tolist() == [0, 2]
    path = write(tmp_path, "bench.json", bench_result(errors=["", "", ""], output_lens=[5, 6, 7]))
    trace = load_trace(path)
    assert trace.request_id.tolist() == [1, 0, 2]  # sorted by start time
    assert trace.num_prompt_tokens.tolist() == [20, 10, 30]
    assert any("sorted by start_times" in note for note in trace.notes)


def test_infsim_csv_needs_block_size_for_hash_ids(tmp_path):
    path = write(tmp_path, "t.csv", "arrival_s,num_prompt_tokens,num_output_tokens,"
                 "prefix_hash_ids\n0,32,1,0 1\n1.5,16,1,\n")  # fmt: skip
    with pytest.raises(InputError, match="no hash_block_size_tokens"):
        load_trace(path)
    trace = load_trace(path, hash_block_size_tokens=16)
    assert trace.prefix_hash_ids_list() == [[0, 1], None]
    bad = write(tmp_path, "b.csv", "arrival_s,num_prompt_tokens,num_output_tokens,"
                "prefix_hash_ids\n0,32,1,0 x\n")  # fmt: skip
    with pytest.raises(InputError, match=r"line 2: column 'prefix_hash_ids' is '0 x'"):
        load_trace(bad, hash_block_size_tokens=16)
