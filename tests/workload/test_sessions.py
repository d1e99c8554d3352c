"""Prefix ids derived from session ids (traces without hash ids)."""

from __future__ import annotations

from infsim.workload.sessions import derive_session_prefixes
from infsim.workload.trace import Trace


def _trace(sessions, prompts, outputs, hash_ids=None, block=None):
    n = len(prompts)
    cols = {
        "request_id": list(range(n)),
        "arrival_s": [float(i) for i in range(n)],
        "num_prompt_tokens": prompts,
        "num_output_tokens": outputs,
        "session_id": sessions,
    }
    if hash_ids is not None:
        cols["prefix_hash_ids"] = hash_ids
    return Trace.from_columns(cols, hash_block_size_tokens=block)


def test_turns_extend_history_and_share_it():
    # Session 7: turn 1 prompt 40 + answer 20 = 60 tokens = 3 full 16-token blocks.
    # Turn 2 prompt 70 (history 60 + 10 new) + answer 30 = 100 -> 6 blocks, first 3 shared.
    # Session 8 is independent; request 3 has no session.
    t = derive_session_prefixes(_trace([7, 8, 7, None], [40, 40, 70, 50], [20, 5, 30, 5]), 16)
    h = t.prefix_hash_ids_list()
    assert t.hash_block_size_tokens == 16
    assert h[0] == [0, 1, 2]
    assert h[1] == [3, 4]
    assert h[2] == [0, 1, 2, 5, 6, 7]
    assert h[3] is None
    assert any("session_id" in n for n in t.notes)


def test_truncated_history_starts_a_new_epoch():
    # Turn 2's prompt (30) is shorter than the 60-token history: nothing is shared.
    t = derive_session_prefixes(_trace([1, 1], [40, 30], [20, 20]), 16)
    h = t.prefix_hash_ids_list()
    assert h[0] == [0, 1, 2]
    assert h[1] == [3, 4, 5]


def test_trace_with_hash_ids_is_unchanged():
    t = _trace([1, 1], [40, 60], [20, 20], hash_ids=[[9, 10], [9, 10, 11]], block=16)
    assert derive_session_prefixes(t, 16) is t


def test_trace_without_sessions_is_unchanged():
    t = _trace([None, None], [40, 60], [20, 20])
    assert derive_session_prefixes(t, 16) is t
