"""The benchmark's own requests as a `Trace`, and the checks that keep a replay honest.

A replay keeps the scenario's model, hardware, deployment and engine and swaps its
workload for the benchmark's successful requests: arrival = start − min(start), prompt and
output lengths as recorded (prefix hash ids only where a format records them: none of the
supported formats does). Anything in the scenario that contradicts the benchmark is an
`InputError`, never silently reconciled: a different model, `workload.max_requests` above
the recorded count, window or scaling options that would change the recorded arrivals.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from infsim.catalog.model import load_model
from infsim.errors import InputError
from infsim.scenario.schema import Scenario
from infsim.validation.measured import MeasuredRequests, MeasuredRun
from infsim.workload.columns import RowLocator
from infsim.workload.trace import Trace

_HF_CACHE = re.compile(r"models--([^/]+)--([^/]+)")


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def model_candidates(name: str) -> list[str]:
    """Names a benchmark's model string may stand for: as given, the HF id inside an HF
    cache path (`.../models--org--name/snapshots/<hash>/` → `org/name`), the last path part."""
    text = name.strip().rstrip("/")
    out = [text]
    match = _HF_CACHE.search(text)
    if match:
        out.append(f"{match.group(1)}/{match.group(2)}")
    out.extend(Path(n).name for n in list(out) if Path(n).name)
    return list(dict.fromkeys(out))


def _scenario_names(scenario_model: str, resolved_name: str) -> set[str]:
    path = Path(scenario_model)
    names = {scenario_model, resolved_name, path.name}
    if path.name == "config.json" or path.suffix == ".json":
        names.add(path.parent.name if path.name == "config.json" else path.stem)
    return {_normalize(n) for n in names if n}


def _catalog_name(candidate: str) -> str | None:
    """The catalog name `candidate` stands for, or None. A benchmark's model string is
    only probed here: one that is no valid path (too long, a NUL byte) is no catalog name."""
    try:
        return load_model(candidate).name
    except (InputError, OSError, ValueError):
        return None


def check_model(measured: MeasuredRun, scenario_model: str, resolved_name: str) -> str | None:
    """`InputError` when the benchmark names a model that is not the scenario's; returns a
    note when the benchmark names none (nothing to check)."""
    if not measured.model:
        return f"{measured.format} file does not name its model: model not checked"
    candidates = model_candidates(measured.model)
    ours = _scenario_names(scenario_model, resolved_name)
    if any(_normalize(c) in ours for c in candidates):
        return None
    if any(_catalog_name(c) == resolved_name for c in candidates if "/" in c or "." not in c):
        return None
    raise InputError(
        f"{measured.source}: the benchmark measured model {measured.model!r} but the scenario "
        f"simulates {scenario_model!r} ({resolved_name}); a replay on another model validates "
        "nothing. Point the scenario at the benchmark's model (--set model=<catalog name, HF "
        "id, or path to its config.json or directory>), or pass --allow-model-mismatch if "
        "they are the same model under different names"
    )


def check_workload_options(scenario: Scenario) -> None:
    """Window and scaling options would change the recorded arrivals: refuse them."""
    w = scenario.workload
    changed = [
        name
        for name, value in (
            ("time_scale", w.time_scale),
            ("rate_scale", w.rate_scale),
            ("start_s", w.start_s or None),
            ("duration_s", w.duration_s),
        )
        if value is not None
    ]
    if changed:
        raise InputError(
            f"scenario workload sets {', '.join('workload.' + c for c in changed)}, which "
            "would change the benchmark's recorded arrivals; a replay uses them as recorded. "
            "Remove them (or --set workload.<name>=null)"
        )


def successful_rows(
    measured: MeasuredRun, max_requests: int | None
) -> tuple[MeasuredRequests, list[str]]:
    """Successful rows in start order (the first `max_requests` of them), with notes."""
    rows = measured.requests
    if rows is None or rows.start_s is None:
        raise InputError(f"{measured.source}: cannot be replayed: {measured.why_not_replayable()}")
    notes: list[str] = []
    usable = ~rows.failed & (rows.num_input_tokens >= 1) & (rows.num_output_tokens >= 1)
    num_failed = int(rows.failed.sum())
    if num_failed:
        notes.append(
            f"{num_failed} of {rows.num_requests} benchmark requests failed; "
            "excluded from the replay and from the measured statistics"
        )
    empty = int((~rows.failed & ~usable).sum())
    if empty:
        notes.append(f"{empty} successful requests with 0 prompt or output tokens excluded")
    if not usable.any():
        raise InputError(
            f"{measured.source}: the benchmark has no successful requests "
            f"({rows.num_requests} recorded, {num_failed} failed); nothing to "
            "compare"
        )
    index = np.flatnonzero(usable)
    index = index[np.argsort(rows.start_s[index], kind="stable")]
    if max_requests is not None:
        if max_requests > len(index):
            raise InputError(
                f"scenario workload.max_requests is {max_requests} but the benchmark "
                f"{measured.source} recorded only {len(index)} successful requests; lower it "
                "or remove it (--set workload.max_requests=null) to replay all of them"
            )
        if max_requests < len(index):
            notes.append(
                f"replaying the first {max_requests} of {len(index)} requests "
                "(workload.max_requests); measured statistics use the same ones"
            )
        index = index[:max_requests]
    return rows.take(index), notes


def replay_trace(rows: MeasuredRequests, source: str, *, send_at_once: bool = False) -> Trace:
    """A trace of `rows` (successful, in start order; request ids 0..n-1 in that order);
    `send_at_once` puts every arrival at 0 (a closed loop without a rate limit)."""
    start = rows.start_s - rows.start_s.min()
    return Trace.from_columns(
        {
            "arrival_s": np.zeros_like(start) if send_at_once else start,
            "num_prompt_tokens": rows.num_input_tokens,
            "num_output_tokens": rows.num_output_tokens,
        },
        source=f"replay of {source}",
        rows=RowLocator(unit="request", offset=0),
    )


def attach_prefix_ids(trace: Trace, prefix_trace: Trace, bench: str) -> Trace:
    """Give the replay the prefix hash ids of the trace file the benchmark replayed.

    Benchmark results do not record prefix identity; a timed-trace run sends the trace's
    requests in order, so its successful requests (in start order) and the trace rows
    (in arrival order) must agree one to one on prompt length, or this is an error.

    Only the ids of hash blocks that lie wholly inside each prompt are kept. The benchmark
    built its prompts from the ids, but the tokens it got back are the live model's own, so
    a block that holds output tokens (the prompt's partial last block once decoding fills
    it, or ids past the prompt) never equals the block a later prompt builds from the same
    id: vLLM misses there, and so must the replay.
    """
    block_tokens = prefix_trace.hash_block_size_tokens or 1
    ids = [
        (row or [])[: prompt // block_tokens] or None
        for row, prompt in zip(
            prefix_trace.prefix_hash_ids_list(),
            prefix_trace.num_prompt_tokens.tolist(),
            strict=True,
        )
    ]
    if prefix_trace.num_requests != trace.num_requests:
        raise InputError(
            f"{prefix_trace.source}: {prefix_trace.num_requests} requests, but {bench} has "
            f"{trace.num_requests} successful ones; the prefix trace must be the one the "
            "benchmark replayed, with every request completed"
        )
    prompts, expected = trace.num_prompt_tokens, prefix_trace.num_prompt_tokens
    mismatch = np.flatnonzero(prompts != expected)
    if mismatch.size:
        i = int(mismatch[0])
        raise InputError(
            f"{prefix_trace.source}: request {i} has {int(expected[i])} prompt tokens but the "
            f"benchmark's request {i} had {int(prompts[i])}: not the trace it replayed"
        )
    columns = {name: trace.table.column(name) for name in trace.table.column_names}
    columns["prefix_hash_ids"] = ids
    return Trace.from_columns(
        columns,
        hash_block_size_tokens=prefix_trace.hash_block_size_tokens,
        source=trace.source,
        notes=(*trace.notes, f"prefix hash ids from {prefix_trace.source}"),
    )
