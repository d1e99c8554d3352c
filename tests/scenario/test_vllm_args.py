"""A `vllm serve` argument line as scenario overrides (`--from-vllm-args`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.scenario.load import load_scenario
from infsim.scenario.vllm_args import parse_vllm_args

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios/quickstart.yaml"


def test_engine_arguments_become_overrides_in_their_order() -> None:
    args = parse_vllm_args(
        "vllm serve meta-llama/Llama-3.1-8B-Instruct -tp 2 --max-num-seqs 128 "
        "--max-model-len 32k --max-num-batched-tokens=2K --no-enable-prefix-caching "
        "--kv-cache-dtype fp8 --gpu-memory-utilization 0.85 --api-server-count 4 "
        "--enable-chunked-prefill --scheduling-policy priority"
    )
    assert args.overrides == [
        "deployment.tensor_parallel=2",
        "engine.max_num_seqs=128",
        "engine.max_model_len=32000",  # vLLM: k = 1000, K = 1024
        "engine.max_num_batched_tokens=2048",
        "engine.enable_prefix_caching=false",
        "deployment.kv_cache_precision=fp8",
        "engine.gpu_memory_utilization=0.85",
        "frontend.api_server_count=4",
        "engine.enable_chunked_prefill=true",
        "engine.scheduling_policy=priority",
    ]
    assert args.model == "meta-llama/Llama-3.1-8B-Instruct"


def test_nothing_is_dropped_silently() -> None:
    args = parse_vllm_args(
        "m --port 8000 --host 0.0.0.0 --trust-remote-code --enforce-eager --dtype bfloat16 "
        "--quantization fp8"
    )
    assert args.overrides == ["deployment.weight_precision=fp8"]  # quantization wins
    notes = " | ".join(args.notes())
    assert "model 'm'" in notes
    assert "not modelled (ignored): --enforce-eager" in notes
    assert "--port 8000" in notes
    assert "--trust-remote-code" in notes
    assert "--dtype bfloat16 (--quantization sets the weights)" in notes


def test_v0_flags() -> None:
    args = parse_vllm_args("m --disable-async-output-proc --disable-custom-all-reduce")
    assert args.overrides == ["engine.async_output_processing=false"]
    assert "not modelled (ignored): --disable-custom-all-reduce" in " | ".join(args.notes())
    with pytest.raises(InputError, match="a flag takes no value"):
        parse_vllm_args("--disable-async-output-proc=1")


def test_a_later_argument_wins_as_in_argparse() -> None:
    args = parse_vllm_args("--max-num-seqs 8 --max-num-seqs 16 --enable-prefix-caching "
                           "--no-enable-prefix-caching")  # fmt: skip
    assert args.overrides == ["engine.max_num_seqs=16", "engine.enable_prefix_caching=false"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--max-num-seq 4", "did you mean 'max-num-seqs'"),
        ("--max-num-seqs", "expects a value"),
        ("--max-num-seqs x", "expected an integer"),
        ("--gpu-memory-utilization lots", "expected a number"),
        ("--enable-prefix-caching=1", "a flag takes no value"),
        ("--speculative-config {}", "acceptance rate"),
        ("a b", "unexpected positional argument"),
        ('"unclosed', "cannot split"),
    ],
)
def test_bad_arguments_are_named(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_vllm_args(line)
    assert str(info.value).startswith("--from-vllm-args: ")


def test_overrides_validate_like_the_file() -> None:
    args = parse_vllm_args("--max-num-seqs 64 --no-enable-prefix-caching -tp 2")
    scenario = load_scenario(QUICKSTART, args.overrides)
    assert scenario.engine.max_num_seqs == 64
    assert scenario.engine.enable_prefix_caching is False
    assert scenario.deployment.tensor_parallel == 2
    with pytest.raises(InputError, match=r"engine\.max_num_seqs"):
        load_scenario(QUICKSTART, parse_vllm_args("--max-num-seqs 0").overrides)


def test_run_from_vllm_args_records_them_and_set_wins(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from infsim.cli import main

    out = tmp_path / "run"
    line = "vllm serve some/model --max-num-seqs 64 --block-size 32 --port 8000"
    args = ["run", str(QUICKSTART), "-o", str(out), "--quiet", "--no-report",
            "--from-vllm-args", line, "--set", "engine.block_size=16"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "no effect on the prediction: --port 8000" in result.output  # said on stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["from_vllm_args"]["overrides"] == [
        "engine.max_num_seqs=64",
        "engine.block_size=32",
    ]
    resolved = (out / "scenario.resolved.yaml").read_text()
    assert "max_num_seqs: 64" in resolved
    assert "block_size: 16" in resolved  # --set comes after the vLLM arguments
    assert not (out / "report.html").exists()
    bad = CliRunner().invoke(main, ["run", str(QUICKSTART), "-o", str(out),
                                    "--from-vllm-args", "--max-num-seq 4"])  # fmt: skip
    assert bad.exit_code == 2
    assert "did you mean 'max-num-seqs'" in bad.output
