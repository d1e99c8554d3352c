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

from infsim.workload.trace import Trace

NOTE = (
    "prefix ids derived from session_id: each turn's prompt is taken to extend the "
    "previous turn's prompt and answer ({block} tokens per block)"
)


def derive_session_prefixes(trace: Trace, block_tokens: int) -> Trace:
    """Fill `prefix_hash_ids` from `session_id` (unchanged if the trace has hash ids)."""
    sessions = trace.session_ids()
    if trace.hash_block_size_tokens is not None or all(s is None for s in sessions):
        return trace
    prompts = trace.num_prompt_tokens.tolist()
    outputs = trace.num_output_tokens.tolist()
    ids: dict[tuple[int, int, int], int] = {}
    history: dict[int, tuple[int, int]] = {}  # session -> (epoch, stream length so far)
    hashes: list[list[int] | None] = []
    for s, prompt, output in zip(sessions, prompts, outputs, strict=True):
        if s is None:
            hashes.append(None)
            continue
        epoch, length = history.get(s, (0, 0))
        if prompt < length:
            epoch += 1
        history[s] = (epoch, prompt + output)
        num_blocks = (prompt + output) // block_tokens
        hashes.append([ids.setdefault((s, epoch, j), len(ids)) for j in range(num_blocks)] or None)
    columns = {name: trace.table.column(name) for name in trace.table.column_names}
    columns["prefix_hash_ids"] = hashes
    return Trace.from_columns(
        columns,
        hash_block_size_tokens=block_tokens,
        source=trace.source,
        notes=(*trace.notes, NOTE.format(block=block_tokens)),
    )
