"""Fuzzing the trace readers (issue 15): every file is either a valid `Trace` or one
`InputError` naming the file — never another exception, a numpy warning, a hang or a
memory blow-up.

Each test starts from a small valid file of one of the seven formats (Azure CSV, BurstGPT
CSV, Mooncake JSONL, LLMServingSim JSONL, vllm-bench JSON, infsim CSV, infsim Parquet) and
mutates it: lines dropped, repeated, swapped, cut, joined or blanked; fields removed or
added (ragged rows); values replaced by huge, negative, non-finite, non-numeric, nested or
very long ones; bytes cut off, flipped or inserted (non-UTF-8, NUL, BOM); giant lines;
Parquet columns of the wrong type, nulls, integers beyond int64, broken metadata and
damaged bytes. The file goes through the public `load_trace` (named format or auto) and,
when it loads, through what a run and `trace info|convert` do with it.

CI runs `FUZZ_EXAMPLES` (200) examples per format, derandomized; a long run:

    INFSIM_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/workload/test_fuzz_traces.py -q

(random seeds, Hypothesis' example database kept in .hypothesis/ to replay failures).
"""

from __future__ import annotations

import io
import json
import os
import resource
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infsim.errors import InputError
from infsim.workload.columns import TRACE_SCHEMA
from infsim.workload.loaders import load_trace
from infsim.workload.sessions import derive_session_prefixes
from infsim.workload.trace import Trace
from tests.fuzzing import bounded

FUZZ_EXAMPLES = int(os.environ.get("INFSIM_FUZZ_EXAMPLES", "200"))
LONG_RUN = "INFSIM_FUZZ_EXAMPLES" in os.environ
SECONDS_PER_EXAMPLE = 20
"""A hang is a failure: each example is interrupted after this long."""
MAX_RSS_GROWTH_BYTES = 3 * 2**30
"""Peak memory may not grow by more than this over one test (a bomb grows it by tens of GB)."""

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=not LONG_RUN,
    database=None if not LONG_RUN else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- valid seed files ----------------------------------------------------------------------

SEEDS: dict[str, tuple[str, str]] = {
    "azure": (
        "az.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,109\n"
        "2023-11-16 18:15:51.1000000,879,7\n",
    ),
    "burstgpt": (
        "b.csv",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type,Session ID\n"
        "5,ChatGPT,472,18,490,Conversation log,11\n"
        "45,ChatGPT,1087,3,1090,Conversation log,11\n"
        "118,GPT-4,417,276,693,API log,12\n",
    ),
    "mooncake": (
        "m.jsonl",
        '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n'
        '{"timestamp": 27, "input_length": 1100, "output_length": 40, "hash_ids": [0, 2, 3]}\n'
        '{"timestamp": 30, "input_length": 12, "output_length": 1, "hash_ids": [4]}\n',
    ),
    "llmservingsim": (
        "l.jsonl",
        '{"arrival_time_ns": 0, "input_toks": 40, "output_toks": 5, "hash_ids": [0, 1]}\n'
        '{"arrival_time_ns": 5000000, "input_toks": 70, "output_toks": 9, "hash_ids": [0, 1, 2]}\n'
        '{"arrival_time_ns": 9000000, "input_toks": 3, "output_toks": 1, "hash_ids": []}\n',
    ),
    "vllm-bench": (
        "bench.json",
        json.dumps(
            {
                "backend": "vllm",
                "request_throughput": 2.5,
                "start_times": [100.5, 100.0, 101.0],
                "input_lens": [10, 20, 30],
                "output_lens": [5, 6, 7],
                "errors": ["", "", ""],
            },
            indent=1,
        ),
    ),
    "infsim-csv": (
        "t.csv",
        "request_id,arrival_s,num_prompt_tokens,num_output_tokens,prefix_hash_ids,session_id,"
        "priority\n"
        "0,0.0,32,1,0 1,7,0\n"
        "1,0.5,48,3,0 1 2,7,1\n"
        "2,1.5,16,1,,,0\n",
    ),
}

# Values a field may be replaced by, as the raw text written into the file.
TOKENS = [
    "", " ", "0", "-1", "1", "1.5", "3.0", "-0", "1e-320", "nan", "NaN", "inf", "-inf",
    "10000000", "10000001", "1e7", "4294967296", "1e10", "1e11", "-1e-9",
    "Infinity", "1e308", "1e400", "-1e400", "9223372036854775807", "9223372036854775808",
    "-9223372036854775809", "18446744073709551616", "10000000000000000000", "1" + "0" * 5000,
    "abc", "é", "\x00", '"', '""', ",", "[]", "{}", "[1, 2]", "[[1]]", '["a"]',
    "[18446744073709551616]", "[null]", "[1.5]", "null", "true", "false", '"7"', '{"a": 1}',
    "2023-11-16 18:15:46+01:00", "2023-11-16T18:15:46Z", "9999-12-31 00:00:00", "0001-01-01",
    "2023-13-45 99:99:99", "x" * 200_000, "9" * 300, " ".join(["1"] * 50_000),
]  # fmt: skip

# -- mutations -----------------------------------------------------------------------------

Lines = list[str]


def _index(data: st.DataObject, items: list, label: str) -> int:
    return data.draw(st.integers(0, max(len(items) - 1, 0)), label=label)


def drop_line(data: st.DataObject, lines: Lines) -> Lines:
    if lines:
        del lines[_index(data, lines, "drop")]
    return lines


def repeat_line(data: st.DataObject, lines: Lines) -> Lines:
    if lines:
        i = _index(data, lines, "repeat")
        lines.insert(i, lines[i])
    return lines


def swap_lines(data: st.DataObject, lines: Lines) -> Lines:
    if len(lines) > 1:
        i, j = _index(data, lines, "i"), _index(data, lines, "j")
        lines[i], lines[j] = lines[j], lines[i]
    return lines


def blank_line(data: st.DataObject, lines: Lines) -> Lines:
    blank = data.draw(st.sampled_from(["", " ", "\t", "\r"]), label="blank text")
    lines.insert(_index(data, lines, "blank") if lines else 0, blank)
    return lines


def cut_line(data: st.DataObject, lines: Lines) -> Lines:
    if lines:
        i = _index(data, lines, "cut")
        lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])), label="at")]
    return lines


def join_lines(data: st.DataObject, lines: Lines) -> Lines:
    if len(lines) > 1:
        i = data.draw(st.integers(0, len(lines) - 2), label="join")
        lines[i : i + 2] = [lines[i] + lines[i + 1]]
    return lines


def giant_line(data: st.DataObject, lines: Lines) -> Lines:
    size = data.draw(st.sampled_from([70_000, 140_000, 1_100_000]), label="giant")
    text = data.draw(st.sampled_from(["x", "1", ",", "[", '"', " "]), label="char") * size
    lines.insert(_index(data, lines, "where") if lines else 0, text)
    return lines


def _fields(line: str) -> list[str]:
    return line.split(",")


def ragged_row(data: st.DataObject, lines: Lines) -> Lines:
    if lines:
        i = _index(data, lines, "row")
        fields = _fields(lines[i])
        if data.draw(st.booleans(), label="add") or len(fields) < 2:
            fields.insert(_index(data, fields, "at"), data.draw(st.sampled_from(TOKENS[:12])))
        else:
            del fields[_index(data, fields, "at")]
        lines[i] = ",".join(fields)
    return lines


def csv_value(data: st.DataObject, lines: Lines) -> Lines:
    if lines:
        i = _index(data, lines, "row")
        fields = _fields(lines[i])
        fields[_index(data, fields, "field")] = data.draw(st.sampled_from(TOKENS), label="value")
        lines[i] = ",".join(fields)
    return lines


_RAW = "\u0000RAW{}\u0000"


def _dump_with_raw(value: object, raws: list[str]) -> str:
    """json.dumps, then the placeholders replaced by raw tokens (huge ints, 1e400, NaN)."""
    text = json.dumps(value)
    for k, raw in enumerate(raws):
        text = text.replace(json.dumps(_RAW.format(k)), raw)
    return text


def _json_token(data: st.DataObject) -> str:
    """A replacement value for a JSON file: mostly valid JSON (a non-JSON token quoted as a
    string), sometimes raw text that breaks the document."""
    raw = data.draw(st.sampled_from(TOKENS), label="value")
    if raw.isdigit() or not data.draw(st.integers(0, 3), label="raw?"):
        return raw if raw.strip() else '""'
    try:
        json.loads(raw)
    except ValueError:
        return json.dumps(raw)
    return raw


def json_value(data: st.DataObject, lines: Lines) -> Lines:
    """Replace or delete one field of one JSON object line (or add an unknown one)."""
    if not lines:
        return lines
    i = _index(data, lines, "row")
    try:
        value = json.loads(lines[i])
    except (ValueError, RecursionError):
        return csv_value(data, lines)
    if not isinstance(value, dict):
        return lines
    keys = [*sorted(value), "extra"]
    key = data.draw(st.sampled_from(keys), label="key")
    if data.draw(st.integers(0, 5), label="delete") == 0:
        value.pop(key, None)
        lines[i] = json.dumps(value)
        return lines
    raw = _json_token(data)
    if isinstance(value.get(key), list) and value[key] and data.draw(st.booleans()):
        value[key][_index(data, value[key], "item")] = _RAW.format(0)
    else:
        value[key] = _RAW.format(0)
    lines[i] = _dump_with_raw(value, [raw])
    return lines


def bench_value(data: st.DataObject, lines: Lines) -> Lines:
    """vllm-bench: one JSON document; replace a key's array, an element, or its length."""
    try:
        doc = json.loads("\n".join(lines))
    except (ValueError, RecursionError):
        return csv_value(data, lines)
    if not isinstance(doc, dict):
        return lines
    key = data.draw(st.sampled_from(["start_times", "input_lens", "output_lens", "errors",
                                     "backend", "extra"]), label="key")  # fmt: skip
    action = data.draw(st.sampled_from(["element", "whole", "delete", "append", "pop"]))
    raw = _json_token(data)
    current = doc.get(key)
    if action == "delete":
        doc.pop(key, None)
    elif action == "whole" or not isinstance(current, list):
        doc[key] = _RAW.format(0)
    elif action == "append":
        current.append(_RAW.format(0))
    elif action == "pop" and current:
        current.pop()
    elif current:
        current[_index(data, current, "item")] = _RAW.format(0)
    return _dump_with_raw(doc, [raw]).split("\n")


LINE_OPS: list[Callable[[st.DataObject, Lines], Lines]] = [
    drop_line, repeat_line, swap_lines, blank_line, cut_line, join_lines, giant_line,
    ragged_row, csv_value,
]  # fmt: skip
JSON_OPS = [*LINE_OPS, json_value, json_value, json_value]
BENCH_OPS = [drop_line, cut_line, giant_line, *[bench_value] * 6]

BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf", b"\r\n",
             b"\x80abc", "é".encode("latin-1")]  # fmt: skip


def mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    """Cut, flip, insert (non-UTF-8, NUL, BOM) or delete bytes."""
    for _ in range(data.draw(st.integers(1, 3), label="byte ops")):
        at = data.draw(st.integers(0, len(raw)), label="at")
        op = data.draw(st.sampled_from(["cut", "flip", "insert", "delete", "crlf"]))
        if op == "cut":
            raw = raw[:at]
        elif op == "flip" and at < len(raw):
            bit = data.draw(st.integers(0, 7), label="bit")
            raw = raw[:at] + bytes([raw[at] ^ (1 << bit)]) + raw[at + 1 :]
        elif op == "insert":
            raw = raw[:at] + data.draw(st.sampled_from(BAD_BYTES), label="bytes") + raw[at:]
        elif op == "delete":
            raw = raw[:at] + raw[at + data.draw(st.integers(1, 64), label="n") :]
        elif op == "crlf":
            raw = raw.replace(b"\n", b"\r\n")
    return raw


def mutated_text(data: st.DataObject, text: str, ops: list, header: bool) -> bytes:
    """Line and value mutations, then sometimes byte mutations. With a `header` (CSV), four
    times in five the header line is left alone so that the data rows get exercised."""
    lines = text.split("\n")
    keep = 1 if header and data.draw(st.integers(0, 4), label="touch header?") else 0
    head, body = lines[:keep], lines[keep:]
    for _ in range(data.draw(st.integers(0, 4), label="line ops")):
        body = data.draw(st.sampled_from(ops), label="op")(data, body)
    raw = "\n".join(head + body).encode("utf-8", errors="surrogatepass")
    if data.draw(st.integers(0, 3), label="bytes?") == 0:
        raw = mutate_bytes(data, raw)
    return raw


# -- Parquet -------------------------------------------------------------------------------

N = 3
VALID_COLUMNS = {
    "request_id": pa.array([0, 1, 2], pa.int64()),
    "arrival_s": pa.array([0.0, 0.5, 1.5]),
    "num_prompt_tokens": pa.array([32, 48, 16], pa.int64()),
    "num_output_tokens": pa.array([1, 3, 1], pa.int64()),
    "prefix_hash_ids": pa.array([[0, 1], [0, 1, 2], None], pa.list_(pa.int64())),
    "session_id": pa.array([7, 7, None], pa.int64()),
    "priority": pa.array([0, 1, 0], pa.int64()),
}
WRONG_ARRAYS: list[Callable[[], pa.Array]] = [
    lambda: pa.array(["a", "1", ""]),
    lambda: pa.array([[1], [2], []], pa.list_(pa.int64())),
    lambda: pa.array([True, False, True]),
    lambda: pa.array([None, None, None]),
    lambda: pa.array([0, None, 2], pa.int64()),
    lambda: pa.array([1.5, float("nan"), float("inf")]),
    lambda: pa.array([1e300, -1e300, 1e19]),
    lambda: pa.array([0, 2**64 - 1, 2**63], pa.uint64()),
    lambda: pa.array([-(2**63), 0, 2**63 - 1], pa.int64()),
    lambda: pa.array([0, 1, 2], pa.int8()),
    lambda: pa.array([0, 1, 2], pa.timestamp("s")),
    lambda: pa.array(["x", "y", "x"]).dictionary_encode(),
    lambda: pa.array([[0, 2**64 - 1], None, []], pa.list_(pa.uint64())),
    lambda: pa.array([[0, None], [1], [2]], pa.list_(pa.int64())),
    lambda: pa.array([[0, 1], [2], [3]], pa.large_list(pa.int32())),
    lambda: pa.array([["a"], ["b"], []], pa.list_(pa.string())),
    lambda: pa.array([{"a": 1}, {"a": 2}, {"a": 3}]),
    lambda: pa.array([b"\xff", b"", b"1"], pa.binary()),
    lambda: pa.array([0, 1, 2], pa.decimal128(5, 0)),
    lambda: pa.array([list(range(100_000)), [0], [1]], pa.list_(pa.int64())),
]
META_VALUES = [b"{not json", b'"16"', b"16", b"0", b"-5", b"1e400", b"1.5", b"null", b"[16]",
               b"\xff\xfe", b"true", b"[]", b'["a", 1]', b'["ok"]', b"5", b"1" * 5000,
               b"[" * 5000, b""]  # fmt: skip
META_KEYS = [b"infsim.hash_block_size_tokens", b"infsim.source", b"infsim.notes"]


def mutated_parquet(data: st.DataObject) -> bytes:
    columns = dict(VALID_COLUMNS)
    names = list(columns)
    for _ in range(data.draw(st.integers(0, 3), label="column ops")):
        op = data.draw(st.sampled_from(["wrong", "wrong", "drop", "extra", "twice", "rows"]))
        name = data.draw(st.sampled_from(names), label="column")
        if op == "wrong":
            columns[name] = data.draw(st.sampled_from(WRONG_ARRAYS), label="array")()
        elif op == "drop":
            columns.pop(name, None)
        elif op == "extra":
            columns["extra"] = pa.array(["x" * 10, None, "z"])
    metadata = {b"infsim.hash_block_size_tokens": b"16", b"infsim.source": b"fuzz"}
    for key in data.draw(st.lists(st.sampled_from(META_KEYS), max_size=3), label="meta"):
        metadata[key] = data.draw(st.sampled_from(META_VALUES), label="meta value")
    arrays = list(columns.values())
    fields = list(columns)
    if data.draw(st.integers(0, 9), label="twice?") == 0 and fields:
        fields.append(fields[0])
        arrays.append(arrays[0])
    rows = data.draw(st.sampled_from([N, N, N, 0, 1]), label="rows")
    table = pa.Table.from_arrays([a.slice(0, rows) for a in arrays], names=fields)
    table = table.replace_schema_metadata(metadata)
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=data.draw(st.sampled_from([1, 1024])))
    raw = sink.getvalue()
    if data.draw(st.integers(0, 3), label="bytes?") == 0:
        raw = mutate_bytes(data, raw)
    return raw


# -- the property --------------------------------------------------------------------------


def load_or_refuse(path: Path, fmt: str, data: st.DataObject) -> None:
    """The property: a valid `Trace` (usable by a run and by `trace info|convert`) or one
    `InputError` naming the file; anything else (a numpy warning included) fails."""
    options = {
        "hash_block_size_tokens": data.draw(st.sampled_from([None, None, 16, 512]), label="hb"),
        "drop_zero_output": data.draw(st.booleans(), label="drop0"),
        "drop_failed": data.draw(st.booleans(), label="dropf"),
    }
    name = data.draw(st.sampled_from([fmt, "auto"]), label="format")
    with bounded(SECONDS_PER_EXAMPLE):
        try:
            trace = load_trace(path, name, **options)
        except InputError as err:
            message = str(err)
            assert message.startswith(str(path)), message
            assert "could not locate" not in message
            assert len(message) < 2000, message[:300]
            return
        check_usable(trace, path)


def check_usable(trace: Trace, path: Path) -> None:
    """What a run and the trace commands do with a loaded trace must work too."""
    assert trace.table.schema.remove_metadata().equals(TRACE_SCHEMA)
    arrival = trace.arrival_s
    assert np.all(np.isfinite(arrival))
    assert np.all(np.diff(arrival) >= 0)
    assert np.all(trace.num_prompt_tokens >= 1)
    assert np.all(trace.num_output_tokens >= 1)
    trace.summary()
    try:
        derived = derive_session_prefixes(trace, 16)  # a scenario's trace: source default
        refusal = ""
    except InputError as err:  # the hash-id bound, said with the file
        derived, refusal = trace, str(err)
    assert refusal.startswith(str(path)) if refusal else True
    assert derived.num_requests == trace.num_requests
    out = path.with_name(path.name + ".out.parquet")
    trace.to_parquet(out)
    again = load_trace(out, "infsim")
    assert again.table.equals(trace.table)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def _memory_stays_bounded():
    """A memory bomb grows the peak RSS by gigabytes; say so instead of passing."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < MAX_RSS_GROWTH_BYTES, f"peak memory grew by {grown / 2**30:.1f} GiB"


def test_seeds_are_valid(workdir):
    """Every seed loads as is (so the mutations start from a valid file)."""
    for fmt, (name, text) in SEEDS.items():
        path = workdir / name
        path.write_text(text)
        trace = load_trace(path, fmt.removesuffix("-csv"), hash_block_size_tokens=(
            16 if fmt == "infsim-csv" else None))  # fmt: skip
        assert trace.num_requests == 3
    raw = io.BytesIO()
    table = pa.table(VALID_COLUMNS).replace_schema_metadata(
        {b"infsim.hash_block_size_tokens": b"16"}
    )
    pq.write_table(table, raw)
    (workdir / "seed.parquet").write_bytes(raw.getvalue())
    assert load_trace(workdir / "seed.parquet").num_requests == 3


@pytest.mark.parametrize("fmt", list(SEEDS))
@FUZZ
@given(data=st.data())
def test_mutated_text_traces(workdir, fmt, data):
    name, text = SEEDS[fmt]
    ops = BENCH_OPS if fmt == "vllm-bench" else JSON_OPS if name.endswith(".jsonl") else LINE_OPS
    path = workdir / name
    path.write_bytes(mutated_text(data, text, ops, header=name.endswith(".csv")))
    load_or_refuse(path, fmt.removesuffix("-csv"), data)


@FUZZ
@given(data=st.data())
def test_mutated_parquet_traces(workdir, data):
    path = workdir / "t.parquet"
    path.write_bytes(mutated_parquet(data))
    load_or_refuse(path, "infsim", data)


@settings(max_examples=max(FUZZ_EXAMPLES // 2, 20), deadline=None, derandomize=not LONG_RUN,
          database=None if not LONG_RUN else settings.default.database,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    raw=st.binary(max_size=4096), suffix=st.sampled_from([".csv", ".jsonl", ".json", ".parquet"])
)
def test_random_bytes(workdir, raw, suffix):
    """Not a mutation of anything: arbitrary bytes under each extension, format auto."""
    path = workdir / f"random{suffix}"
    path.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            load_trace(path)
            refusal = str(path)
        except InputError as err:
            refusal = str(err)
    assert refusal.startswith(str(path))
