"""Export a workload so it can be replayed on a live engine (`infsim trace export`).

mooncake — JSONL `{"timestamp": ms (int), "input_length", "output_length", "hash_ids"}`,
  what `vllm bench serve --dataset-name timed_trace` reads. vLLM's reader (vllm 0.32
  `benchmarks/datasets/datasets.py` TimedTrace) needs, besides the file:
  * `--timed-trace-sec-multiplier 0.001` (it multiplies `timestamp` into seconds; default 1),
  * `--timed-trace-chunk-hash-size B` with B = the trace's hash block size (default 16;
    Mooncake traces use 512, which is also what `load_trace(format="mooncake")` assumes),
  * hash ids covering the whole prompt: the prompt is built from B random tokens per id and
    is cut short when the ids run out, so rows with too few ids (or none) are padded here
    with fresh ids used by no other row (noted). The token content per id is seeded with
    Python's `hash()`, so prefixes are shared within one benchmark run only.
  Timestamps are rounded to integer milliseconds.
vllm-custom — JSONL `{"prompt": text, "output_tokens": n}` for `--dataset-name custom`.
  Best effort: infsim has no tokenizer, so a prompt is n common English words (about one
  token each in BPE vocabularies; the count vLLM sees differs a little, and its chat
  template adds more unless `--skip-chat-template`). Rows sharing hash ids share text, so
  prefix sharing survives. Arrival times are lost (`--request-rate` decides them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError
from infsim.limits import EXPORT_WORDS, HASH_IDS
from infsim.workload.output import write_atomically
from infsim.workload.trace import Trace

MOONCAKE_BLOCK_TOKENS = 512
EXPORT_FORMATS = ("mooncake", "vllm-custom")

_WORDS_TEXT = (
    "the of and to in is was for that with as on by at from his it an were are which this "
    "be or has had not first one their its new after who they have her she two been other "
    "when there all during into school time may years more most only over city some world "
    "would where later up such used many can state about national out known university "
    "united then made year under team well through great war called since part game both "
    "season three early while before league became including being film county north south "
    "west east river group family music center people american second house number public "
    "life last government series found history club several these area work also between"
)
_WORDS = tuple(_WORDS_TEXT.split(" "))


def _covering_ids(trace: Trace, block_tokens: int) -> tuple[list[list[int]], list[str]]:
    """Hash ids per row covering ceil(prompt / block) blocks; fresh ids pad short rows.

    The count is checked against `limits.HASH_IDS` before any list is built."""
    needed = -(-trace.num_prompt_tokens // block_tokens)
    HASH_IDS.check(
        int(needed.sum()),
        f"the export's number of {block_tokens}-token block ids (at least one per prompt block)",
        trace.source,
    )
    given = trace.prefix_hash_ids_list()
    used = [i for ids in given if ids for i in ids]
    fresh = (max(used) + 1) if used else 0
    out: list[list[int]] = []
    padded = 0
    for ids, prompt in zip(given, trace.num_prompt_tokens.tolist(), strict=True):
        ids = list(ids or [])
        need = -(-int(prompt) // block_tokens)
        if len(ids) < need:
            padded += 1
            missing = need - len(ids)
            ids.extend(range(fresh, fresh + missing))
            fresh += missing
        out.append(ids)
    notes = []
    if padded:
        what = "no hash ids" if not used else "fewer hash ids than their prompt has blocks"
        notes.append(
            f"{padded} of {trace.num_requests} rows had {what}; gave them fresh "
            f"{block_tokens}-token block ids (shared with no other row), because vLLM's "
            "timed_trace builds the prompt from the ids and cuts it short when they run out"
        )
    return out, notes


def mooncake_rows(
    trace: Trace, block_tokens: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the Mooncake JSONL and notes on what changed (see the module docstring)."""
    own = trace.hash_block_size_tokens
    if own is not None and block_tokens is not None and block_tokens != own:
        raise InputError(
            f"{trace.source}: its hash ids cover {own}-token blocks; they cannot be re-blocked "
            f"to {block_tokens} (drop --hash-block-size or give {own})"
        )
    block = own or block_tokens or MOONCAKE_BLOCK_TOKENS
    hash_ids, notes = _covering_ids(trace, block)
    stamps = np.rint(trace.arrival_s * 1000.0).astype(np.int64).tolist()
    rows = [
        {"timestamp": t, "input_length": int(i), "output_length": int(o), "hash_ids": ids}
        for t, i, o, ids in zip(
            stamps,
            trace.num_prompt_tokens.tolist(),
            trace.num_output_tokens.tolist(),
            hash_ids,
            strict=True,
        )
    ]
    notes.append(
        f"hash ids cover {block}-token blocks: replay with `vllm bench serve --dataset-name "
        f"timed_trace --dataset-path OUT --timed-trace-sec-multiplier 0.001 "
        f"--timed-trace-chunk-hash-size {block}`"
        + (
            f"; load back with load_trace(OUT, 'mooncake', hash_block_size_tokens={block})"
            if block != MOONCAKE_BLOCK_TOKENS
            else ""
        )
    )
    return rows, notes


def _block_words(block_id: int, count: int) -> list[str]:
    rng = np.random.default_rng(block_id)
    return [_WORDS[i] for i in rng.integers(0, len(_WORDS), size=count)]


def custom_rows(trace: Trace) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of vLLM's `custom` dataset JSONL (best-effort prompt text; see the docstring)."""
    EXPORT_WORDS.check(
        int(trace.num_prompt_tokens.sum()), "the export's number of prompt words", trace.source
    )
    block = trace.hash_block_size_tokens or MOONCAKE_BLOCK_TOKENS
    hash_ids, _ = _covering_ids(trace, block)
    rows = []
    for ids, prompt, output in zip(
        hash_ids, trace.num_prompt_tokens.tolist(), trace.num_output_tokens.tolist(), strict=True
    ):
        words: list[str] = []
        for block_id in ids:
            words.extend(_block_words(block_id, min(block, int(prompt) - len(words))))
            if len(words) >= prompt:
                break
        rows.append({"prompt": " ".join(words), "output_tokens": int(output)})
    notes = [
        "vllm-custom prompts are best effort: about one token per word, no tokenizer was "
        "used; vLLM applies the chat template unless --skip-chat-template; arrival times are "
        "not kept (use --format mooncake with timed_trace to replay arrivals)"
    ]
    return rows, notes


def export_trace(trace: Trace, out: Path, fmt: str, block_tokens: int | None = None) -> list[str]:
    """Write `trace` to `out` as `fmt` (mooncake | vllm-custom); returns the notes."""
    if fmt == "mooncake":
        rows, notes = mooncake_rows(trace, block_tokens)
    elif fmt == "vllm-custom":
        rows, notes = custom_rows(trace)
    else:
        raise InputError(f"unknown export format {fmt!r}; known: {', '.join(EXPORT_FORMATS)}")

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, separators=(",", ":")) + "\n")

    write_atomically(out, write, "export")
    return notes
