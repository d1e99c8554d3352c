"""The arrival process's rows (`engine._trace_rows`): a trace's values chunk by chunk, each
row's hash ids as an int64 array view of its chunk (None for a null), the same ids the
column holds, across chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from infsim.sim import engine
from infsim.workload.trace import Trace

HASH_IDS = [[1, 2, 3], None, [], [4], [-5, 2**62], None, [7, 8], [9]]
EXPECTED = [ids or None for ids in HASH_IDS]  # (a trace keeps an empty list as a null)


def _trace() -> Trace:
    n = len(HASH_IDS)
    return Trace.from_columns(
        {
            "request_id": list(range(100, 100 + n)),
            "arrival_s": [0.5 * i for i in range(n)],
            "num_prompt_tokens": [64 + i for i in range(n)],
            "num_output_tokens": [8] * n,
            "prefix_hash_ids": HASH_IDS,
        },
        hash_block_size_tokens=16,
    )


@pytest.mark.parametrize("chunk", [1, 3, 8, 4096])
def test_rows_carry_each_rows_hash_ids(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(engine, "ARRIVAL_CHUNK", chunk)
    rows = list(engine._trace_rows(_trace(), with_hash_ids=True))
    assert [r[:6] for r in rows] == [
        (i, 100 + i, 0.5 * i, 64 + i, 8, 0) for i in range(len(HASH_IDS))
    ]
    for (*_, ids), expected in zip(rows, EXPECTED, strict=True):
        if expected is None:
            assert ids is None
        else:
            assert ids.dtype == np.int64
            assert ids.tolist() == expected


def test_rows_without_hash_ids() -> None:
    rows = list(engine._trace_rows(_trace(), with_hash_ids=False))
    assert [r[6] for r in rows] == [None] * len(HASH_IDS)
