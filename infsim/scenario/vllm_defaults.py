"""vLLM defaults that depend on the release being simulated.

`async_scheduling`: vLLM's `SchedulerConfig.async_scheduling` is tri-state (None = let
`VllmConfig` decide). Async scheduling landed opt-in in vLLM 0.10 (PR #19970, June 2025)
and became the default from 0.14.0 (PR #27614, merged 2025-12-29: "enable async scheduling
unless there is an incompatible option"). With the default left unset, vLLM switches it off
for pooling models, for speculative methods outside the EAGLE family (MTP included) and
n-gram on GPU, and for executors that do not support it; the V1 model runner does not run it
with pipeline parallelism (`max_concurrent_batches` falls back to the PP size). infsim's
speculative methods map as: eagle/mtp on, draft_model/ngram off.
"""

from __future__ import annotations

import re

NEWEST_VLLM = "0.33.0"
"""The newest vLLM release whose behaviour infsim follows (batch defaults: resolve.py)."""

ASYNC_DEFAULT_SINCE = (0, 14, 0)
ASYNC_SPECULATIVE_METHODS = frozenset({"eagle", "mtp"})


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.15.1' → (0, 15, 1); a missing patch level counts as 0."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def default_async_scheduling(
    version: str, pipeline_parallel: int = 1, speculative_method: str | None = None
) -> bool:
    """vLLM's resolved `async_scheduling` when the user leaves it unset."""
    if version_tuple(version) < ASYNC_DEFAULT_SINCE:
        return False
    if pipeline_parallel > 1:
        return False
    return speculative_method is None or speculative_method in ASYNC_SPECULATIVE_METHODS


def engine_version(
    explicit: str | None, table_engine: str | None, table_version: str | None
) -> str:
    """The vLLM release a scenario simulates: explicit, else the calibration table's when it
    was measured under vLLM, else the newest one infsim follows."""
    if explicit:
        return explicit
    if table_engine == "vllm" and table_version:
        return table_version
    return NEWEST_VLLM


V1_DEFAULT_SINCE = (0, 8, 0)
"""vLLM 0.8.0 made the V1 engine the default (release notes, March 2025); V0 was removed in 0.11."""


def is_v0(version: str) -> bool:
    """Whether a vLLM release runs the V0 engine by default (before 0.8)."""
    return version_tuple(version) < V1_DEFAULT_SINCE


def cuda_graph_defaults(version: str) -> tuple[int, bool]:
    """(largest step in tokens replayed from a CUDA graph, whether steps holding a prefill
    chunk are too) for a vLLM release. V1 (≥ 0.8): piecewise graphs cover mixed steps up
    to the largest capture size, 512 by default (`max_cudagraph_capture_size`). V0: the
    model runner captures decode batches of up to 256 sequences and runs every step with a
    prompt eagerly. What the cost model does with it: `infsim.cost.calibrated` (eager
    steps pay the table's eager collective rows)."""
    if is_v0(version):
        return 256, False
    return 512, True


ASYNC_OUTPUT_SINCE = (0, 6, 0)
"""vLLM 0.6.0 added V0's async output processing, on by default (release notes, Sept 2024)."""


def has_async_output_processing(version: str) -> bool:
    """Whether a vLLM release has V0's async output processing at all (0.6.0 until V1)."""
    return ASYNC_OUTPUT_SINCE <= version_tuple(version) < V1_DEFAULT_SINCE


def default_async_output_processing(
    version: str, pipeline_parallel: int = 1, speculative: bool = False
) -> bool:
    """vLLM V0's `use_async_output_proc` as resolved when the user leaves it on: from 0.6.0
    until V1, except with pipeline parallelism or speculative decoding, where
    `ModelConfig.verify_async_output_proc` turns it off (and on CPU, handled by the
    caller). V1 (≥ 0.8) processes outputs in its front end instead (`infsim.frontend`)."""
    return has_async_output_processing(version) and pipeline_parallel == 1 and not speculative
