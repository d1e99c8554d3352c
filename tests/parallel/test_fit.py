"""Layout and memory-fit errors: InputError naming the field, with the numbers; exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError


def test_70b_does_not_fit_one_h100_with_the_numbers(resolved) -> None:
    with pytest.raises(InputError) as err:
        resolved(engine={"max_model_len": 8192})
    msg = str(err.value)
    assert "Llama-3.1-70B does not fit on 1 × H100-SXM" in msg
    assert "weights need 131.4 GiB (131.4 GiB / (tp 1 × pp 1))" in msg
    assert "max_model_len 8192-token sequence 2.50 GiB (512 blocks" in msg
    assert "pipeline_parallel" in msg


def test_one_max_model_len_sequence_must_fit(resolved) -> None:
    # TP2: 65.7 GiB of weights per GPU leaves ~4 GiB of KV, less than one 128k-token
    # sequence (20 GiB at 160 KiB/token/GPU); PP2 halves the weights again and fits.
    with pytest.raises(InputError, match=r"one max_model_len 131072-token sequence 20.00 GiB"):
        resolved(deployment={"tensor_parallel": 2}, engine={"max_model_len": 131072})
    rs = resolved(
        deployment={"tensor_parallel": 2, "pipeline_parallel": 2},
        engine={"max_model_len": 131072},
    )
    assert rs.kv.weight_bytes_per_gpu == pytest.approx(rs.model.weight_bytes("bfloat16") / 4)
    assert rs.num_gpus == 4
    assert rs.deployment_label() == "1× H100-SXM TP2×PP2"


def test_pp_halves_weights_and_kv_per_gpu(resolved) -> None:
    tp4 = resolved(deployment={"tensor_parallel": 4})
    tp4pp2 = resolved(deployment={"tensor_parallel": 4, "pipeline_parallel": 2})
    assert tp4pp2.kv.weight_bytes_per_gpu == tp4.kv.weight_bytes_per_gpu / 2
    assert tp4pp2.kv.kv_bytes_per_token_per_gpu == tp4.kv.kv_bytes_per_token_per_gpu / 2
    assert tp4pp2.kv.num_blocks > 2 * tp4.kv.num_blocks  # more free memory per layer


def test_moe_fit_message_splits_expert_weights(resolved) -> None:
    with pytest.raises(InputError) as err:
        resolved("qwen3-235b-a22b", deployment={"tensor_parallel": 2, "expert_parallel": 2})
    msg = str(err.value)
    assert "experts" in msg
    assert "(ep 2 × tp/ep 1 × pp 1)" in msg


@pytest.mark.parametrize(
    ("deployment", "model", "match"),
    [
        ({"expert_parallel": 2, "tensor_parallel": 2}, "llama-3.1-8b", "has no experts"),
        ({"expert_parallel": 4, "tensor_parallel": 2}, "mixtral-8x7b", "must divide both"),
        ({"pipeline_parallel": 33}, "llama-3.1-8b", "33 stages for the 32 layers"),
    ],
)
def test_layout_errors_name_the_field(resolved, deployment, model, match) -> None:
    with pytest.raises(InputError, match=match) as err:
        resolved(model, deployment=deployment)
    assert "deployment." in str(err.value)


def test_cli_exit_code_2_without_traceback(tmp_path: Path) -> None:
    scenario = {
        "model": "llama-3.1-70b",
        "hardware": {"gpu": "h100-sxm"},
        "deployment": {"tensor_parallel": 2},
        "engine": {"max_model_len": 131072},
        "workload": {
            "synthetic": {
                "num_requests": 1,
                "arrival": {"kind": "poisson", "rate_per_s": 1},
                "prompt_tokens": {"kind": "fixed", "value": 8},
                "output_tokens": {"kind": "fixed", "value": 1},
            }
        },
    }
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "does not fit on 2 × H100-SXM" in result.output
    assert "Traceback" not in result.output


def test_missing_link_is_an_input_error(resolved) -> None:
    # cpu-host has one "GPU" per node and no inter-node link: TP2 cannot price its ring.
    with pytest.raises(InputError, match="inter_node_link, which the hardware catalog lists"):
        resolved("tiny-llama", gpu="cpu-host", deployment={"tensor_parallel": 2})
