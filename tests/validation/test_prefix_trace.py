"""`validate --prefix-trace`: prefix ids of the replayed trace reach the simulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.scenario.load import load_scenario
from infsim.validation import validate
from infsim.workload.loaders import load_trace

REPO = Path(__file__).resolve().parents[2]
LIVE = REPO / "validation" / "live" / "prefix-trace"
SCENARIO = REPO / "scenarios" / "vllm-cpu-tiny-llama.yaml"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO, ["engine.enable_prefix_caching=true"])


def test_prefix_ids_of_the_trace_make_hits_visible(scenario):
    bench = LIVE / "rep1" / "result.json"
    trace = load_trace(LIVE / "trace.jsonl", hash_block_size_tokens=128)
    cold = validate(bench, scenario, SCENARIO.parent)
    warm = validate(bench, scenario, SCENARIO.parent, prefix_trace=trace)
    # vLLM served 73 % of prompt tokens from its prefix cache in this run; with the trace's
    # hash ids the replay hits too, so first tokens come much sooner.
    assert warm.metrics["ttft_p50"].predicted < 0.7 * cold.metrics["ttft_p50"].predicted
    assert any("prefix hash ids from" in n for n in warm.run["notes"])


def test_a_trace_that_was_not_replayed_is_refused(scenario, tmp_path: Path):
    lines = (LIVE / "trace.jsonl").read_text().splitlines()
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="must be the one the benchmark replayed"):
        validate(LIVE / "rep1" / "result.json", scenario, SCENARIO.parent,
                 prefix_trace=load_trace(short, hash_block_size_tokens=128))  # fmt: skip
