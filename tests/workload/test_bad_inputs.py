"""Issue 15, traces and workloads: every family the fuzz campaign found, one regression test
each. Every bad input ends in one `InputError` naming the file and the line, row or field;
no traceback, no numpy warning, no wrapped-around number, no terabyte asked for."""

from __future__ import annotations

import errno
import json
import os
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.workload import synthetic as syn
from infsim.workload.loaders import load_trace
from infsim.workload.sessions import derive_session_prefixes
from infsim.workload.spec import WorkloadSpec, build_trace, parse_model
from infsim.workload.trace import Trace

AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
BURST = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type,Session ID\n"
INFSIM = "arrival_s,num_prompt_tokens,num_output_tokens,prefix_hash_ids\n"
MOONCAKE = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n'


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def refused(path, fmt="auto", **options) -> str:
    """The message of the one `InputError` loading `path` raises, with numpy warnings
    turned into errors (none may leak before the message)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError) as info:
            load_trace(path, fmt, **options)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "could not locate" not in message
    assert len(message) < 2000
    return message


# -- CSV rows ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "line", "fields"),
    [
        ("2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.68,374\n", 3, 2),  # short
        ("2023-11-16 18:15:46.68,374,44,5\n", 2, 4),  # long
        ("2023-11-16 18:15:46.68,374,44\n2023-11-16 18:1", 3, 1),  # truncated
        ('2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.68,"374,44\n', 3, 2),  # quote
    ],
)
def test_ragged_or_truncated_csv_row_names_the_line(tmp_path, rows, line, fields):
    message = refused(write(tmp_path, "az.csv", AZURE + rows))
    assert f"line {line}: has {fields} field(s), the header has 3" in message


def test_ragged_row_deep_in_a_big_file_names_its_line(tmp_path):
    body = "2023-11-16 18:15:46.68,374,44\n" * 200_000
    message = refused(write(tmp_path, "az.csv", AZURE + body + "2023-11-16 18:15:46.68,1\n"))
    assert "line 200002: has 2 field(s)" in message


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    path = write(tmp_path, "az.csv", AZURE + "2023-11-16 18:15:46.68,374,44\n\n\n"
                 "2023-11-16 18:15:47.68,-3,44\n")  # fmt: skip
    assert "line 5: column 'num_prompt_tokens' is -3" in refused(path)
    jsonl = write(tmp_path, "m.jsonl", MOONCAKE + "\n" + MOONCAKE.replace("600", "0"))
    assert "line 3: column 'num_prompt_tokens' is 0" in refused(jsonl, "mooncake")


@pytest.mark.parametrize("fmt", ["auto", "azure"])
def test_first_csv_line_over_128_kib(tmp_path, fmt):
    header = AZURE.rstrip("\n") + "," + "x" * 200_000 + "\n"
    message = refused(write(tmp_path, "az.csv", header + "2023-11-16 18:15:46.68,1,1,1\n"), fmt)
    assert "line 1" in message or "cannot tell the trace format" in message


def test_a_data_line_longer_than_a_read_block_is_read(tmp_path):
    ids = " ".join(str(i) for i in range(200_000))  # 1.3 MB in one field
    path = write(tmp_path, "t.csv", INFSIM + f"0,3200000,1,{ids}\n1,5,1,\n")
    trace = load_trace(path, hash_block_size_tokens=16)
    assert len(trace.prefix_hash_ids_list()[0]) == 200_000


# -- Azure timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "has"),
    [
        ("2023-11-16 18:15:46.68+00:00", "2023-11-16 18:15:47.68", "lacks"),
        ("2023-11-16 18:15:46.68", "2023-11-16T18:15:47.68Z", "has"),
    ],
)
def test_azure_timestamps_mixing_utc_offset_and_none(tmp_path, first, second, has):
    path = write(tmp_path, "az.csv", AZURE + f"{first},1,1\n{second},1,1\n")
    message = refused(path)
    assert "line 3: column 'TIMESTAMP'" in message
    assert f"which {has} a UTC offset" in message


def test_azure_timestamps_all_with_offsets_are_read_in_utc(tmp_path):
    path = write(tmp_path, "az.csv", AZURE + "2023-11-16 18:00:00+01:00,1,1\n"
                 "2023-11-16T17:00:02.5Z,1,1\n")  # fmt: skip
    assert load_trace(path).arrival_s.tolist() == [0.0, 2.5]


def test_azure_timestamp_out_of_range(tmp_path):
    path = write(tmp_path, "az.csv", AZURE + "2023-11-16 18:00:00,1,1\n9999-01-01 00:00:00,1,1\n")
    assert "line 3: column 'TIMESTAMP' is '9999-01-01 00:00:00'" in refused(path)


# -- text that is not UTF-8 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "content"),
    [
        ("m.jsonl", "mooncake", MOONCAKE.encode() + b'{"timestamp": 1, "x": "\xff"}\n'),
        ("m.jsonl", "auto", MOONCAKE.encode() + b'{"timestamp": 1, "x": "\xff"}\n'),
        ("az.csv", "azure", AZURE.encode() + b"2023-11-16 18:15:46.68,3\xe9,1\n"),
        ("b.json", "vllm-bench", b'{"backend": "vllm", "x": "\xff", "start_times": [1]}'),
    ],
)
def test_file_not_utf8_names_line_and_byte(tmp_path, name, fmt, content):
    message = refused(write(tmp_path, name, content), fmt)
    assert "not UTF-8" in message
    assert "offset" in message


# -- Parquet -------------------------------------------------------------------------------

GOOD = {"arrival_s": [0.0, 1.0], "num_prompt_tokens": [10, 20], "num_output_tokens": [1, 2]}


def parquet(tmp_path, columns=None, metadata=None, name="t.parquet"):
    table = pa.table(columns or GOOD)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    path = tmp_path / name
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({b"infsim.hash_block_size_tokens": b"{not json"}, "not valid JSON"),
        ({b"infsim.hash_block_size_tokens": b'"16"'}, "is '16'; expected an integer"),
        ({b"infsim.hash_block_size_tokens": b"1e400"}, "is inf; expected an integer"),
        ({b"infsim.hash_block_size_tokens": b"0"}, "is 0; must be >= 1"),
        ({b"infsim.notes": b"{not json"}, "'infsim.notes': line 1: not valid JSON"),
        ({b"infsim.notes": b"5"}, "'infsim.notes' is 5; expected a JSON list of strings"),
        ({b"infsim.source": b"\xff\xfe"}, "'infsim.source' is not UTF-8"),
    ],
)
def test_parquet_bad_metadata(tmp_path, metadata, expected):
    assert expected in refused(parquet(tmp_path, metadata=metadata))


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("arrival_s", ["a", "b"], "column 'arrival_s' has type string; expected numbers"),
        ("num_prompt_tokens", [[10], [20]], "column 'num_prompt_tokens' has type list"),
        ("prefix_hash_ids", ["a", "b"], "'prefix_hash_ids' has type string; expected lists"),
        ("session_id", ["a", "b"], "column 'session_id' has type string"),
        ("arrival_s", [0.0, None], "row 1: column 'arrival_s' is missing (null)"),
        ("num_prompt_tokens", [10, 1.5], "row 1: column 'num_prompt_tokens' is 1.5; must be an"),
        ("request_id", pa.array([1, 2**64 - 1], pa.uint64()), "fit in a signed 64-bit"),
    ],
)
def test_parquet_wrong_column_types(tmp_path, column, values, expected):
    assert expected in refused(parquet(tmp_path, {**GOOD, column: values}))


def test_parquet_damaged_or_not_parquet(tmp_path):
    path = parquet(tmp_path)
    write(tmp_path, "cut.parquet", path.read_bytes()[:-30])
    assert "not a readable Parquet file" in refused(tmp_path / "cut.parquet")
    write(tmp_path, "text.parquet", "arrival_s\n1\n")
    assert "not a Parquet file" in refused(tmp_path / "text.parquet")


def test_parquet_rows_are_counted_before_reading(tmp_path, monkeypatch):
    path = parquet(tmp_path, {k: v * 50 for k, v in GOOD.items()} | {
        "arrival_s": [float(i) for i in range(100)]})  # fmt: skip
    monkeypatch.setenv("INFSIM_MAX_TRACE_ROWS", "99")
    assert "the number of rows is 100; at most 99 rows" in refused(path)


# -- numbers beyond int64 and token counts of 10^19 ----------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "content", "expected"),
    [
        ("t.csv", "infsim", INFSIM + "0,32,1,0 10000000000000000000\n",
         "line 2: column 'prefix_hash_ids' is '0 10000000000000000000'"),
        ("m.jsonl", "mooncake", MOONCAKE.replace("[0, 1]", "[0, 10000000000000000000]"),
         "line 1: field 'hash_ids'"),
        ("m.jsonl", "mooncake", MOONCAKE.replace("600", "1" + "0" * 5000),
         "line 1: field 'input_length' is an integer of 5,001 digits"),
    ],
)  # fmt: skip
def test_hash_ids_and_integers_beyond_int64(tmp_path, name, fmt, content, expected):
    message = refused(write(tmp_path, name, content), fmt, hash_block_size_tokens=None)
    assert expected in message


def test_parquet_hash_id_beyond_int64(tmp_path):
    ids = pa.array([[0], [2**64 - 1]], pa.list_(pa.uint64()))
    path = parquet(tmp_path, {**GOOD, "prefix_hash_ids": ids},
                   {b"infsim.hash_block_size_tokens": b"16"})  # fmt: skip
    assert "row 1: column 'prefix_hash_ids' holds 18446744073709551615" in refused(path)


@pytest.mark.parametrize(
    ("name", "fmt", "content"),
    [
        ("az.csv", "azure", AZURE + "2023-11-16 18:15:46.68,10000000000000000000,44\n"),
        ("az.csv", "azure", AZURE + "2023-11-16 18:15:46.68,1e30,44\n"),
        ("m.jsonl", "mooncake", MOONCAKE.replace("600", "9000000000000000000")),
        ("b.json", "vllm-bench", json.dumps(
            {"start_times": [1, 2], "input_lens": [1e19, 2], "output_lens": [1, 2]})),
        ("t.csv", "infsim", INFSIM + "0,5,10000000000000000000,\n"),
    ],
)  # fmt: skip
def test_token_counts_of_1e19_are_reported_as_given(tmp_path, name, fmt, content):
    message = refused(write(tmp_path, name, content), fmt)
    assert "-9223372036854775808" not in message
    assert "at most 10,000,000 tokens in one request" in message
    assert "INFSIM_MAX_REQUEST_TOKENS" in message


def test_token_limit_can_be_raised(tmp_path, monkeypatch):
    path = write(tmp_path, "t.csv", INFSIM.replace(",prefix_hash_ids", "") + "0,20000000,1\n")
    refused(path)
    monkeypatch.setenv("INFSIM_MAX_REQUEST_TOKENS", "3e7")
    assert load_trace(path).num_prompt_tokens.tolist() == [20_000_000]
    monkeypatch.setenv("INFSIM_MAX_REQUEST_TOKENS", "lots")
    with pytest.raises(InputError, match="INFSIM_MAX_REQUEST_TOKENS is 'lots'"):
        load_trace(path)


# -- messages with a location --------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ('{"timestamp": 1, "input_length": "5", "output_length": 5}\n',
         "line 2: field 'input_length' is '5'; expected an integer"),
        ('{"timestamp": 1, "input_length": 5.5, "output_length": 5}\n',
         "line 2: field 'input_length' is 5.5; expected an integer"),
        ('{"timestamp": true, "input_length": 5, "output_length": 5}\n',
         "line 2: field 'timestamp' is True; expected a number"),
        ('{"timestamp": 1e400, "input_length": 5, "output_length": 5}\n',
         "line 2: field 'timestamp' is inf; expected a finite number"),
        ('{"timestamp": 1, "timestamp": 2, "input_length": 5, "output_length": 5}\n',
         "line 2: not valid JSON (the field 'timestamp' appears more than once)"),
        ('{"timestamp": 1, "input_length": 5, "output_length": 5, "hash_ids": 7}\n',
         "line 2: field 'hash_ids' is 7; expected a list of integers"),
        ("[1, 2]\n", "line 2: expected a JSON object, got list"),
        (MOONCAKE.strip() + MOONCAKE, "line 2: not valid JSON (Extra data)"),
    ],
)  # fmt: skip
def test_jsonl_errors_name_the_line(tmp_path, tail, expected):
    assert expected in refused(write(tmp_path, "m.jsonl", MOONCAKE + tail), "mooncake")


@pytest.mark.parametrize("first", ["null", " null", 'null, "input_length": 12}', "7"])
def test_jsonl_line_that_is_not_an_object(tmp_path, first):
    """pyarrow 26's JSON reader segfaults when the first value is `null`: such lines are
    refused before pyarrow sees them (found by test_fuzz_traces.py)."""
    path = write(tmp_path, "m.jsonl", first + "\n" + MOONCAKE)
    assert "line 1: " in refused(path, "mooncake")
    path = write(tmp_path, "m.jsonl", MOONCAKE + "null\n" + MOONCAKE)
    assert "line 2: expected a JSON object, got NoneType" in refused(path, "mooncake")


def test_format_errors_name_the_file(tmp_path):
    path = write(tmp_path, "az.csv", AZURE + "2023-11-16 18:15:46.68,1,1\n")
    assert "format 'azure' has no prefix hash ids" in refused(path, hash_block_size_tokens=16)
    bench = write(tmp_path, "b.json", json.dumps({"start_times": [1], "input_lens": [1],
                                                  "output_lens": [1]}))  # fmt: skip
    assert "must be null (got 16)" in refused(bench, "vllm-bench", hash_block_size_tokens=16)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"start_times": [1, "a"]}, "request 1: 'start_times' is 'a'; expected a number"),
        ({"start_times": 5}, "'start_times' is 5; expected a list"),
        ({"input_lens": [[1], 2]}, "request 0: 'input_lens' is [1]; expected a number"),
        ({"input_lens": [None, 2]}, "request 0: 'input_lens' is None"),
        ({"errors": 5}, "'errors' is 5; expected a list of 2 strings"),
        ({"errors": ["", {"a": 1}]}, "request 1: 'errors' entry is {'a': 1}"),
        ({"start_times": [1, 1e308 * 10]}, "not valid JSON"),
    ],
)
def test_vllm_bench_arrays_holding_wrong_types(tmp_path, result, expected):
    base = {"backend": "vllm", "start_times": [1, 2], "input_lens": [1, 2], "output_lens": [1, 2]}
    text = json.dumps({**base, **result}).replace("Infinity", "1e999")
    path = write(tmp_path, "b.json", text)
    if "not valid JSON" in expected:  # 1e999 reads as inf: not a finite start time
        assert "expected a finite number" in refused(path, "vllm-bench")
    else:
        assert expected in refused(path, "vllm-bench")


def test_unusable_path_names(tmp_path):
    with pytest.raises(InputError, match="not a usable file name"):
        load_trace(str(tmp_path / ("x" * 5000)))
    with pytest.raises(InputError, match="not a usable file name"):
        load_trace(str(tmp_path / "a\0b.csv"))


# -- memory bombs: limits in the schema -----------------------------------------------------


def workload(text: str) -> WorkloadSpec:
    return parse_model(WorkloadSpec, yaml.safe_load(text), source="s.yaml", section="workload")


SYNTH = ("{{synthetic: {{num_requests: {n}, arrival: {{kind: poisson, rate_per_s: {rate}}}, "
         "prompt_tokens: {prompt}, output_tokens: {{kind: fixed, value: 1}}}}}}")  # fmt: skip
FIXED = "{kind: fixed, value: 5}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SYNTH.format(n=10**12, rate=1, prompt=FIXED),
         "num_requests: Value error, the number of requests is 1,000,000,000,000; at most "
         "10,000,000 requests are accepted; set INFSIM_MAX_REQUESTS"),
        (SYNTH.format(n=10, rate=1, prompt="{kind: fixed, value: 1000000000000}"),
         "value: Value error, the count is 1,000,000,000,000; at most 10,000,000 tokens"),
        ("{synthetic: {arrival: {kind: poisson, rate_per_s: 1}, prompt_tokens: {kind: fixed, "
         "value: 1}, output_tokens: {kind: fixed, value: 1}, sessions: {num_sessions: 2, turns: "
         "{kind: fixed, value: 1000000000}, think_time: {kind: fixed, value_s: 1}}}}",
         "the largest number of turns is 1,000,000,000; at most 10,000 turns per session"),
    ],
)  # fmt: skip
def test_requests_turns_and_tokens_are_bounded_by_the_schema(text, expected):
    with pytest.raises(InputError) as info:
        workload(text)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SYNTH.format(n=5, rate=".inf", prompt=FIXED), "rate_per_s: Input should be a finite"),
        (SYNTH.format(n=5, rate="1e308", prompt=FIXED), "the rate is 1e+308; at most"),
        (SYNTH.format(n=5, rate=1, prompt="{kind: lognormal, mean: .nan, sigma: 1, max: 9}"),
         "mean: Input should be a finite number"),
        (SYNTH.format(n=5, rate=1, prompt="{kind: lognormal, mean: 1e308, sigma: 1, max: 9}"),
         "mean: Value error, the count is 1e+308"),
        (SYNTH.format(n=5, rate=1, prompt="{kind: lognormal, mean: 9, sigma: 1e308, max: 9}"),
         "sigma: Input should be less than or equal to 10"),
        (SYNTH.format(n=5, rate=1, prompt=FIXED).replace("poisson", "gamma, cv: .inf"),
         "cv: Input should be a finite number"),
        ("{trace: {path: x}, start_s: .inf}", "start_s: Input should be a finite number"),
        ("{trace: {path: x}, duration_s: 1e300}", "duration_s: Value error, the time is 1e+300"),
        ("{trace: {path: x}, time_scale: 1e308}", "time_scale: Value error, the factor is"),
        ("{trace: {path: x}, rate_scale: .nan}", "rate_scale: Input should be a finite"),
    ],
)  # fmt: skip
def test_numbers_must_be_finite_and_sane(text, expected):
    with pytest.raises(InputError) as info:
        workload(text)
    assert expected in str(info.value)


def test_raising_the_request_limit(monkeypatch):
    text = SYNTH.format(n=20, rate=1, prompt=FIXED)
    monkeypatch.setenv("INFSIM_MAX_REQUESTS", "10")
    with pytest.raises(InputError, match="INFSIM_MAX_REQUESTS"):
        workload(text)
    monkeypatch.setenv("INFSIM_MAX_REQUESTS", "20")
    trace = build_trace(workload(text), base_dir=".", rng=np.random.default_rng(0))
    assert trace.num_requests == 20


def test_burstgpt_session_rows_cannot_ask_for_terabytes(tmp_path, monkeypatch):
    huge = write(tmp_path, "b.csv", BURST + "0,a,1000000000000,5,0,x,1\n")
    assert "line 2: column 'num_prompt_tokens' is 1,000,000,000,000" in refused(huge)
    rows = "".join(f"{i},a,9000000,5,0,x,{i % 3}\n" for i in range(40))  # 22.5 M ids at 16
    many = write(tmp_path, "many.csv", BURST + rows)
    trace = load_trace(many)
    monkeypatch.setenv("INFSIM_MAX_HASH_IDS", "1000000")
    with pytest.raises(InputError, match=r"gives the number of ids is 22,500,000; at most "
                       r"1,000,000 prefix hash ids.*session_block_tokens"):  # fmt: skip
        derive_session_prefixes(trace, 16)


def test_session_history_is_bounded_before_building_ids(monkeypatch):
    spec = syn.ChatSessions(
        num_sessions=3, session_arrivals=syn.PoissonArrivals(1.0),
        turns=syn.FixedLengths(2000), user_tokens=syn.FixedLengths(5000),
        output_tokens=syn.FixedLengths(1000), think_time=syn.FixedThinkTime(1.0),
    )  # fmt: skip
    with pytest.raises(InputError, match=r"history\) plus output is 1[0-9,]+; at most 10,000,000"):
        syn.generate_sessions(spec, np.random.default_rng(0))
    monkeypatch.setenv("INFSIM_MAX_REQUEST_TOKENS", "100000000")
    with pytest.raises(InputError, match="prefix hash ids of all turns"):
        syn.generate_sessions(spec, np.random.default_rng(0))


def test_library_generators_check_their_counts():
    with pytest.raises(InputError, match="at most 10,000,000 requests"):
        syn.generate_requests(10**12, syn.PoissonArrivals(1.0), syn.FixedLengths(1),
                              syn.FixedLengths(1), np.random.default_rng(0))  # fmt: skip


# -- writing: a missing directory, a full disk ------------------------------------------------


def small_trace() -> Trace:
    return Trace.from_columns({"arrival_s": [0.0, 1.0], "num_prompt_tokens": [3, 4],
                               "num_output_tokens": [1, 1]})  # fmt: skip


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_convert_into_a_missing_directory(tmp_path, suffix):
    with pytest.raises(InputError, match=r"the directory .*nodir does not exist"):
        getattr(small_trace(), f"to_{suffix}")(tmp_path / "nodir" / f"t.{suffix}")
    src = tmp_path / "s.parquet"
    small_trace().to_parquet(src)
    result = CliRunner().invoke(main, ["trace", "convert", str(src),
                                       str(tmp_path / "nodir" / f"t.{suffix}")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "nodir does not exist" in result.output
    assert "internal error" not in result.output


def _disk_full(table, where, *args, **kwargs):
    with open(where, "wb") as handle:
        handle.write(b"PAR1 half a file")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(("module", "function"), [("pq", "write_table"), ("pacsv", "write_csv")])
def test_disk_full_while_writing_a_trace(tmp_path, monkeypatch, module, function):
    import infsim.workload.trace as trace_module

    out = tmp_path / "out.data"
    out.write_text("the previous, complete file")
    monkeypatch.setattr(getattr(trace_module, module), function, _disk_full)
    writer = small_trace().to_parquet if module == "pq" else small_trace().to_csv
    with pytest.raises(InputError) as info:
        writer(out)
    assert str(info.value) == f"{out}: cannot write the trace: no space left on device"
    assert out.read_text() == "the previous, complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.data"]  # no temporary left


def test_disk_full_through_the_cli(tmp_path, monkeypatch):
    import infsim.workload.trace as trace_module

    src = tmp_path / "s.parquet"
    small_trace().to_parquet(src)
    monkeypatch.setattr(trace_module.pq, "write_table", _disk_full)
    result = CliRunner().invoke(main, ["trace", "convert", str(src), str(tmp_path / "o.parquet")])
    assert result.exit_code == 2
    assert "o.parquet: cannot write the trace: no space left on device" in result.output


def test_export_into_a_missing_directory(tmp_path):
    from infsim.workload.export import export_trace

    with pytest.raises(InputError, match="cannot write the export: the directory"):
        export_trace(small_trace(), tmp_path / "nodir" / "x.jsonl", "mooncake")


def test_writing_over_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        small_trace().to_parquet(fifo)


# -- the trace CLI -------------------------------------------------------------------------


def test_trace_cli_bad_options_exit_2(tmp_path):
    src = tmp_path / "s.parquet"
    small_trace().to_parquet(src)
    bad_spec = write(tmp_path, "spec.yaml", b"synthetic: {num_requests: \xff}\n")
    for args in (
        ["synth", str(tmp_path / "o.parquet"), "--num-requests", str(10**12)],
        ["synth", str(tmp_path / "o.parquet"), "--rate", "inf"],
        ["synth", str(tmp_path / "o.parquet"), "--prompt-tokens", "lognormal:1e308:1e308:9"],
        ["synth", str(tmp_path / "o.parquet"), "--spec", str(bad_spec)],
        ["convert", str(src), str(tmp_path / "o.csv"), "--start-s", "nan"],
        ["convert", str(src), str(tmp_path / "o.csv"), "--rate-scale", "1e308"],
    ):
        result = CliRunner().invoke(main, ["trace", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "internal error" not in result.output


def test_trace_formats_lists_every_format():
    result = CliRunner().invoke(main, ["trace", "formats"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert names == [
        "azure",
        "burstgpt",
        "csv",
        "infsim",
        "llmservingsim",
        "mooncake",
        "vidur",
        "vllm-bench",
    ]


def test_a_workload_with_no_request_is_refused(tmp_path):
    """A window past the trace's end used to run 'successfully' with NaN goodput."""
    text = SYNTH.format(n=50, rate=1, prompt=FIXED)
    spec = workload(text).model_copy(update={"start_s": 100000.0})
    with pytest.raises(InputError, match=r"keep no request: the window \[100000, end\) s"):
        build_trace(spec, base_dir=".", rng=np.random.default_rng(0))
    path = write(tmp_path, "b.csv", BURST + "5,a,4,0,4,x,1\n")
    spec = workload(f"{{trace: {{path: {path}}}}}")
    spec = spec.model_copy(
        update={"trace": spec.trace.model_copy(update={"drop_zero_output": True})}
    )
    with pytest.raises(InputError, match=r"holds no request to simulate \(dropped 1 of 1 rows"):
        build_trace(spec, base_dir=".", rng=np.random.default_rng(0))


def test_exports_are_bounded_before_building_rows(tmp_path, monkeypatch):
    from infsim.workload.export import export_trace

    big = Trace.from_columns({"arrival_s": [0.0, 1.0, 2.0], "num_prompt_tokens": [10**7] * 3,
                              "num_output_tokens": [1, 1, 1]})  # fmt: skip
    monkeypatch.setenv("INFSIM_MAX_HASH_IDS", "1000000")
    with pytest.raises(InputError, match="1,875,000; at most 1,000,000 prefix hash ids"):
        export_trace(big, tmp_path / "m.jsonl", "mooncake", 16)
    monkeypatch.setenv("INFSIM_MAX_EXPORT_WORDS", "1000")
    with pytest.raises(InputError, match="prompt words is 30,000,000; at most 1,000"):
        export_trace(big, tmp_path / "c.jsonl", "vllm-custom")
    assert list(tmp_path.iterdir()) == []


def test_text_trace_size_is_checked_before_reading(tmp_path, monkeypatch):
    path = write(tmp_path, "az.csv", AZURE + "2023-11-16 18:15:46.68,1,1\n")
    monkeypatch.setenv("INFSIM_MAX_TRACE_BYTES", "20")
    assert "the file's size is 67; at most 20 bytes" in refused(path)


def test_arrival_just_past_the_bound_shows_its_exact_value():
    # A value a hair over 1e10 s printed with 6 digits read "is 1e+10 s; at most 1e+10 s".
    from infsim.workload.columns import MAX_ARRIVAL_S, RowLocator, build_table

    just_over = float(np.nextafter(MAX_ARRIVAL_S, np.inf))
    columns = {"arrival_s": [0.0, just_over], "num_prompt_tokens": [1, 1],
               "num_output_tokens": [1, 1]}  # fmt: skip
    with pytest.raises(InputError) as err:
        build_table(columns, hash_block_size_tokens=None, source="t.csv", rows=RowLocator())
    assert f"is {just_over!r} s; at most 1e+10 s" in str(err.value)
    assert "row 1" in str(err.value)
