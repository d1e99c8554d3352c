"""`validate --prefix-trace`: prefix ids of the replayed trace reach the simulation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from infsim import api
from infsim.errors import InputError
from infsim.scenario.load import load_scenario
from infsim.validation import validate
from infsim.validation.formats import load_measured
from infsim.validation.replay import attach_prefix_ids, replay_trace, successful_rows
from infsim.workload.loaders import load_trace
from infsim.workload.trace import Trace

REPO = Path(__file__).resolve().parents[2]
LIVE = REPO / "validation" / "live" / "prefix-trace"
SCENARIO = REPO / "scenarios" / "vllm-cpu-tiny-llama.yaml"
# validation/live_store.py (the live runs in compact form; validation/ is not a package)
_spec = importlib.util.spec_from_file_location("live_store", REPO / "validation" / "live_store.py")
live_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(live_store)


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO, ["engine.enable_prefix_caching=true"])


@pytest.fixture(scope="module")
def repeats(tmp_path_factory) -> Path:
    """The prefix-trace repeats these tests read, materialised from the compact store:
    `<dir>/rep<N>/{result.json, metrics.json, ...}` as measured."""
    root = tmp_path_factory.mktemp("live")
    for rep in ("rep1", "rep9"):
        live_store.materialise("prefix-trace", rep, root)
    return root / "prefix-trace"


def test_prefix_ids_of_the_trace_make_hits_visible(scenario, repeats):
    bench = repeats / "rep1" / "result.json"
    trace = load_trace(LIVE / "trace.jsonl", hash_block_size_tokens=128)
    cold = validate(bench, scenario, SCENARIO.parent)
    warm = validate(bench, scenario, SCENARIO.parent, prefix_trace=trace)
    # vLLM served 73 % of prompt tokens from its prefix cache in this run; with the trace's
    # hash ids the replay hits too, so first tokens come much sooner.
    assert warm.metrics["ttft_p50"].predicted < 0.7 * cold.metrics["ttft_p50"].predicted
    assert any("prefix hash ids from" in n for n in warm.run["notes"])


def test_a_trace_that_was_not_replayed_is_refused(scenario, repeats, tmp_path: Path):
    lines = (LIVE / "trace.jsonl").read_text().splitlines()
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="must be the one the benchmark replayed"):
        validate(repeats / "rep1" / "result.json", scenario, SCENARIO.parent,
                 prefix_trace=load_trace(short, hash_block_size_tokens=128))  # fmt: skip


def test_only_blocks_wholly_inside_a_prompt_keep_their_ids():
    # The benchmark's outputs are the live model's tokens, not the trace's: a block that
    # holds output never matches a later prompt built from the same id.
    ids = [[1, 2], [1, 2, 3], [7]]
    prompts = [200, 300, 100]
    trace = Trace.from_columns(
        {"arrival_s": [0.0, 1.0, 2.0], "num_prompt_tokens": prompts,
         "num_output_tokens": [60, 60, 60], "prefix_hash_ids": ids},
        hash_block_size_tokens=128,
    )  # fmt: skip
    bench = Trace.from_columns(
        {"arrival_s": [0.0, 1.0, 2.0], "num_prompt_tokens": prompts,
         "num_output_tokens": [60, 60, 60]}
    )  # fmt: skip
    replay = attach_prefix_ids(bench, trace, "bench.json")
    assert replay.prefix_hash_ids_list() == [[1], [1, 2], None]


def test_the_replay_hits_exactly_the_prompt_tokens_the_live_server_hit(scenario, repeats):
    # validation/live/prefix-trace: vLLM's counters over each repeat (metrics.json) say
    # 61,440 of 83,733 prompt tokens came from its prefix cache; the replay must agree.
    rep = repeats / "rep9"
    live = json.loads((rep / "metrics.json").read_text())["server_counters_delta"]
    measured = load_measured(rep / "result.json", "auto", None)
    rows, _ = successful_rows(measured, None)
    trace = attach_prefix_ids(
        replay_trace(rows, "rep9"),
        load_trace(LIVE / "trace.jsonl", hash_block_size_tokens=128),
        "rep9",
    )
    resolved, _ = api.prepare(scenario, SCENARIO.parent)
    requests = api.run_resolved(resolved, trace).requests
    assert sum(requests.column("num_prompt_tokens").to_pylist()) == live["vllm:prompt_tokens"]
    assert sum(requests.column("num_cached_tokens").to_pylist()) == live["vllm:prefix_cache_hits"]
