"""Step rows kept as flat values (infsim/metrics/recorder.py): the timeline batches equal
those built the straightforward way, a `StepRow` per row and a column per field."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.metrics import recorder
from infsim.metrics.recorder import TIMELINE_SCHEMA, Recorder, StepRow

COUNT = st.integers(0, 2**31 - 1)
TIME = st.floats(allow_nan=False, allow_infinity=False, width=64)
ROW = st.builds(StepRow, COUNT, TIME, TIME, COUNT, COUNT, COUNT, COUNT, COUNT, COUNT,
                st.floats(0.0, 1.0), COUNT, COUNT, COUNT)  # fmt: skip


def reference_batches(rows: list[StepRow], per_batch: int) -> list[pa.RecordBatch]:
    out = []
    for i in range(0, len(rows), per_batch):
        columns = list(zip(*rows[i : i + per_batch], strict=True))
        arrays = [pa.array(c, type=f.type) for c, f in zip(columns, TIMELINE_SCHEMA, strict=True)]
        out.append(pa.RecordBatch.from_arrays(arrays, schema=TIMELINE_SCHEMA))
    return out


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(ROW, max_size=40), per_batch=st.integers(1, 16), plain=st.booleans())
def test_timeline_batches_equal_a_column_per_field(rows, per_batch, plain) -> None:
    """Counts up to int32's limit and any finite float (−0.0, subnormals) come out as
    recorded, in batches of ROWS_PER_BATCH rows; a plain tuple records as a StepRow."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(recorder, "ROWS_PER_BATCH", per_batch)
        rec = Recorder()
        for row in rows:
            rec.on_step(tuple(row) if plain else row)
        assert rec.num_rows == len(rows)
        assert rec.num_steps == sum(r.num_steps for r in rows)
        rec.finish()
    expected = reference_batches(rows, per_batch)
    got = rec.steps._chunks
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.equals(pa.Table.from_batches([e]))
        for name in ("start_s", "end_s", "kv_usage"):  # the very floats, sign of zero too
            assert [x.hex() for x in g[name].to_pylist()] == [x.hex() for x in e[name].to_pylist()]


def test_a_count_beyond_int32_raises() -> None:
    rec = Recorder()
    rec.on_step(StepRow(0, 0.0, 1.0, 1, 2**31, 0, 0, 0, 0, 0.0, 0, 0, 1))
    with pytest.raises(pa.ArrowInvalid):
        rec.finish()


def test_the_status_column_names_every_status() -> None:
    """`requests_table` names a status by its value's index into a tuple: every status,
    including the ones a run rarely ends in, gets its own lower-case name."""
    from infsim.core.request import RequestState, Status
    from infsim.metrics.requests import requests_table

    reqs = []
    for i, status in enumerate(Status):
        req = RequestState(index=i, request_id=i, arrival_s=0.0, num_prompt_tokens=4,
                           num_output_tokens=2)  # fmt: skip
        req.status = status
        reqs.append(req)
    assert requests_table(reqs).column("status").to_pylist() == [
        "waiting", "running", "finished", "rejected", "failed"
    ]  # fmt: skip
