"""Prefix identity from conversation sessions, for traces that have session ids but no
hash ids (BurstGPT 2.x `Session ID`, infsim tables with `session_id`).

Model: a chat turn's prompt is the session's whole history — the previous turn's prompt
and answer — followed by the new user message, so the session's token stream only grows.
Block j of that stream has the same content in every turn that covers it, and gets the id
(session, epoch, j). Each turn's ids cover the full blocks of its prompt and answer, so the
next turn can hit the previous answer as in vLLM. When a turn's prompt is shorter than the
history it should extend (the client truncated it), where it diverges is unknown, so the
session starts a new epoch and shares nothing with its past.
"""

from __future__ import annotations

import numpy as np

from infsim import arrays
from infsim.errors import InputError
from infsim.limits import HASH_IDS
from infsim.workload.columns import hash_ids_from_runs
from infsim.workload.trace import Trace

NOTE = (
    "prefix ids derived from session_id: each turn's prompt is taken to extend the "
    "previous turn's prompt and answer ({block} tokens per block)"
)


def derive_session_prefixes(trace: Trace, block_tokens: int) -> Trace:
    """Fill `prefix_hash_ids` from `session_id` (unchanged if the trace has hash ids).

    Ids are numbered in order of first use. The number of ids is checked against
    `limits.HASH_IDS` before any is built; each (session, epoch) keeps its ids as a few
    runs of consecutive numbers, so memory is 8 bytes per id of the result.
    """
    column = trace.table.column("session_id")
    if trace.hash_block_size_tokens is not None or column.null_count == len(column):
        return trace
    present = arrays.is_valid(column)
    totals = trace.num_prompt_tokens + trace.num_output_tokens
    num_blocks = np.where(present, totals // block_tokens, 0)
    total = int(num_blocks.sum())
    if total > HASH_IDS.value():
        raise InputError(
            f"{trace.source}: deriving prefix ids from session_id at {block_tokens} tokens per "
            f"block gives {HASH_IDS.message('the number of ids', total)}; or give a larger "
            "session_block_tokens, or null for no prefix identity from sessions"
        )
    sessions = column.fill_null(arrays.scalar(0, column.type)).to_pylist()
    history: dict[int, tuple[int, int]] = {}  # session -> (epoch, stream length so far)
    chains: dict[tuple[int, int], list[list[int]]] = {}  # -> runs [first id, count]
    next_id = 0
    run_starts: list[int] = []
    run_lengths: list[int] = []
    per_row = np.zeros(len(sessions), np.int64)
    rows = zip(
        sessions, present.tolist(), trace.num_prompt_tokens.tolist(), totals.tolist(),
        num_blocks.tolist(), strict=True,
    )  # fmt: skip
    for index, (s, has_session, prompt, stream, blocks) in enumerate(rows):
        if not has_session:
            continue
        epoch, length = history.get(s, (0, 0))
        if prompt < length:
            epoch += 1
        history[s] = (epoch, stream)
        runs = chains.setdefault((s, epoch), [])
        covered = sum(count for _, count in runs)
        if blocks > covered:
            runs.append([next_id, blocks - covered])
            next_id += blocks - covered
        remaining = blocks
        for first, count in runs:
            if remaining <= 0:
                break
            run_starts.append(first)
            run_lengths.append(min(count, remaining))
            remaining -= count
        per_row[index] = blocks
    columns = {name: trace.table.column(name) for name in trace.table.column_names}
    columns["prefix_hash_ids"] = hash_ids_from_runs(run_starts, run_lengths, per_row)
    return Trace.from_columns(
        columns,
        hash_block_size_tokens=block_tokens,
        source=trace.source,
        notes=(*trace.notes, NOTE.format(block=block_tokens)),
    )
