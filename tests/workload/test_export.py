"""`infsim trace export`: Mooncake JSONL for vLLM's timed_trace round-trips through
`load_trace(format="mooncake")`; vLLM custom JSONL is best effort."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.workload.cli import load_workload
from infsim.workload.export import export_trace
from infsim.workload.loaders import load_trace
from infsim.workload.trace import Trace

SCENARIO = """\
name: export-me
seed: 7
model: llama-3.1-8b
workload:
  synthetic:
    num_requests: 20
    arrival: {kind: poisson, rate_per_s: 3.0}
    prompt_tokens: {kind: uniform, min: 100, max: 1500}
    output_tokens: {kind: fixed, value: 16}
hardware:
  gpu: h100-sxm
"""


def _hashed_trace() -> Trace:
    # Two requests share their first 512-token block (id 7); ids cover each prompt exactly.
    return Trace.from_columns(
        {
            "arrival_s": np.array([0.0, 0.0123, 1.5]),
            "num_prompt_tokens": np.array([1000, 600, 100]),
            "num_output_tokens": np.array([5, 6, 7]),
            "prefix_hash_ids": [[7, 8], [7, 9], [10]],
        },
        hash_block_size_tokens=512,
    )


def test_mooncake_round_trip_keeps_arrivals_lengths_and_hash_ids(tmp_path: Path):
    trace = _hashed_trace()
    out = tmp_path / "trace.jsonl"
    export_trace(trace, out, "mooncake")
    first = json.loads(out.read_text().splitlines()[1])
    assert first == {"timestamp": 12, "input_length": 600, "output_length": 6,
                     "hash_ids": [7, 9]}  # fmt: skip
    back = load_trace(out, format="mooncake")
    assert back.arrival_s.tolist() == [0.0, 0.012, 1.5]  # millisecond resolution
    assert back.num_prompt_tokens.tolist() == [1000, 600, 100]
    assert back.num_output_tokens.tolist() == [5, 6, 7]
    assert back.prefix_hash_ids_list() == [[7, 8], [7, 9], [10]]
    assert back.hash_block_size_tokens == 512


def test_scenario_workload_exports_with_its_seed(tmp_path: Path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "trace.jsonl"
    result = CliRunner().invoke(main, ["trace", "export", str(scenario), str(out),
                                       "--format", "mooncake"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 20 requests" in result.output
    assert "--timed-trace-sec-multiplier 0.001" in result.output  # the note on stderr
    built = load_workload(scenario)
    back = load_trace(out, format="mooncake")
    assert np.allclose(back.arrival_s, np.rint(built.arrival_s * 1000) / 1000)
    assert back.num_prompt_tokens.tolist() == built.num_prompt_tokens.tolist()
    # no hash ids in the synthetic trace: each row gets its own ids covering its prompt
    ids = back.prefix_hash_ids_list()
    assert [len(i) for i in ids] == [-(-int(n) // 512) for n in built.num_prompt_tokens]
    flat = [i for row in ids for i in row]
    assert len(flat) == len(set(flat))


def test_set_overrides_the_scenario(tmp_path: Path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "trace.jsonl"
    result = CliRunner().invoke(main, ["trace", "export", str(scenario), str(out), "--format",
                                       "mooncake", "--set", "workload.max_requests=5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 5


def test_short_hash_ids_are_padded_and_said(tmp_path: Path):
    trace = Trace.from_columns(
        {"arrival_s": np.array([0.0]), "num_prompt_tokens": np.array([40]),
         "num_output_tokens": np.array([2]), "prefix_hash_ids": [[3]]},
        hash_block_size_tokens=16,
    )  # fmt: skip
    notes = export_trace(trace, tmp_path / "t.jsonl", "mooncake")
    assert json.loads((tmp_path / "t.jsonl").read_text())["hash_ids"] == [3, 4, 5]
    assert any("fewer hash ids" in n for n in notes)
    assert any("--timed-trace-chunk-hash-size 16" in n for n in notes)
    with pytest.raises(InputError, match="cannot be re-blocked"):
        export_trace(trace, tmp_path / "u.jsonl", "mooncake", block_tokens=512)


def test_vllm_custom_is_best_effort_text(tmp_path: Path):
    out = tmp_path / "custom.jsonl"
    notes = export_trace(_hashed_trace(), out, "vllm-custom")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["output_tokens"] for r in rows] == [5, 6, 7]
    assert [len(r["prompt"].split(" ")) for r in rows] == [1000, 600, 100]
    # requests sharing hash id 7 share their first 512 words (a shared prefix)
    assert rows[0]["prompt"].split(" ")[:512] == rows[1]["prompt"].split(" ")[:512]
    assert any("best effort" in n for n in notes)


def test_set_on_a_trace_file_is_an_error(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    export_trace(_hashed_trace(), path, "mooncake")
    result = CliRunner().invoke(main, ["trace", "export", str(path), str(tmp_path / "o.jsonl"),
                                       "--format", "mooncake", "--set", "seed=1"])  # fmt: skip
    assert result.exit_code == 2
    assert "--set applies to scenario files" in result.output
