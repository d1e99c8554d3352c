"""The canonical Trace: validation, transforms and Parquet/CSV round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.errors import InputError
from infsim.workload.loaders import load_trace
from infsim.workload.trace import Trace


def small_trace() -> Trace:
    return Trace.from_columns(
        {
            "arrival_s": [0.0, 1.0, 2.5, 4.0],
            "num_prompt_tokens": [32, 16, 40, 8],
            "num_output_tokens": [4, 1, 30, 2],
            "prefix_hash_ids": [[0, 1], None, [0, 1, 2, 3], []],
            "session_id": [7, None, 7, None],
            "priority": [0, 1, 0, -1],
        },
        hash_block_size_tokens=16,
        source="small",
    )


def test_accessors():
    trace = small_trace()
    assert trace.num_requests == 4
    assert trace.prefix_hash_ids_list() == [[0, 1], None, [0, 1, 2, 3], None]  # [] → null
    assert trace.session_ids() == [7, None, 7, None]
    assert trace.priority.tolist() == [0, 1, 0, -1]
    assert trace.duration_s == 4.0
    summary = trace.summary()
    assert summary["fraction_with_prefix_ids"] == 0.5
    assert (summary["num_total_blocks"], summary["num_unique_blocks"]) == (6, 4)


def test_duplicate_id_names_row():
    with pytest.raises(InputError, match=r"src: row 2: column 'request_id' repeats id 5"):
        Trace.from_columns(
            {"arrival_s": [0, 1, 2], "num_prompt_tokens": [1] * 3, "num_output_tokens": [1] * 3,
             "request_id": [5, 6, 5]},
            source="src",
        )  # fmt: skip


def test_slice_rebases_and_caps():
    trace = small_trace()
    window = trace.slice(start_s=1.0, end_s=4.0)
    assert window.arrival_s.tolist() == [0.0, 1.5]
    assert window.request_id.tolist() == [1, 2]
    assert trace.slice(max_requests=3).request_id.tolist() == [0, 1, 2]
    assert trace.slice(start_s=0.5, max_requests=1).arrival_s.tolist() == [0.5]
    assert trace.slice(start_s=10).num_requests == 0


def test_scale_rate_is_inverse_time_scale():
    trace = small_trace()
    assert trace.scale_rate(2).arrival_s.tolist() == [0.0, 0.5, 1.25, 2.0]
    assert trace.scale_time(2).scale_rate(2).table.equals(trace.table)
    with pytest.raises(InputError, match="must be a finite number > 0"):
        trace.scale_time(0)


def test_parquet_round_trip_is_byte_identical(tmp_path):
    trace = small_trace()
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    trace.to_parquet(first)
    loaded = load_trace(first)
    loaded.to_parquet(second)
    assert first.read_bytes() == second.read_bytes()
    assert loaded == trace or loaded.table.equals(trace.table)
    assert (loaded.hash_block_size_tokens, loaded.source) == (16, "small")


def test_csv_round_trip(tmp_path):
    trace = small_trace()
    path = tmp_path / "t.csv"
    trace.to_csv(path)
    loaded = load_trace(path, hash_block_size_tokens=16)
    assert loaded.table.equals(trace.table)


@st.composite
def traces(draw):
    num = draw(st.integers(1, 40))
    gaps = draw(
        st.lists(
            st.floats(0, 100, allow_nan=False, allow_subnormal=False), min_size=num, max_size=num
        )
    )
    prompts = draw(st.lists(st.integers(1, 5000), min_size=num, max_size=num))
    outputs = draw(st.lists(st.integers(1, 500), min_size=num, max_size=num))
    return Trace.from_columns(
        {"arrival_s": np.cumsum(gaps), "num_prompt_tokens": prompts, "num_output_tokens": outputs}
    )


@settings(max_examples=60, deadline=None)
@given(trace=traces(), factor=st.sampled_from([0.25, 0.5, 2.0, 4.0]))
def test_scale_round_trip_property(trace, factor):
    back = trace.scale_time(factor).scale_time(1 / factor)
    np.testing.assert_array_equal(back.arrival_s, trace.arrival_s)  # powers of 2: exact
    assert np.all(np.diff(trace.scale_rate(factor).arrival_s) >= 0)


@settings(max_examples=60, deadline=None)
@given(trace=traces(), start_s=st.floats(0, 500), length_s=st.floats(0, 500))
def test_slice_property(trace, start_s, length_s):
    window = trace.slice(start_s, start_s + length_s)
    original = trace.arrival_s
    inside = (original >= start_s) & (original < start_s + length_s)
    assert window.num_requests == int(inside.sum())
    np.testing.assert_allclose(window.arrival_s + start_s, original[inside])
    # The rest of the trace, re-based at the same point, continues where the window ends.
    rest = trace.slice(start_s + length_s)
    assert window.num_requests + rest.num_requests == int((original >= start_s).sum())
