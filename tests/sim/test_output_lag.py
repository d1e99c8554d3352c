"""vLLM V0's async output processing (`engine.async_output_processing`): a step's outputs
are processed during the next step, after its host work, so the first and the last token
of a request reach the client one host step (`cost_model` step overhead) after their step
ended; the engine's cadence, and so TPOT's gaps, are unchanged."""

from __future__ import annotations

import pytest

from infsim import api
from infsim.errors import InputError
from infsim.scenario.load import validate_scenario
from infsim.scenario.vllm_defaults import default_async_output_processing
from infsim.workload.trace import Trace


def _trace() -> Trace:
    return Trace.from_columns(
        {
            "request_id": [0, 1],
            "arrival_s": [0.0, 0.0],
            "num_prompt_tokens": [4, 4],
            "num_output_tokens": [3, 2],
        }
    )


def _scenario(make_scenario, fast_forward: bool, **engine):
    scen = make_scenario(fast_forward=fast_forward, version="0.6.0", **engine)
    cost = scen.cost_model.model_copy(
        update={
            "step_overhead_s": 0.125,
            "per_seq_overhead_s": 0.0625,
            "per_worker_overhead_s": 0.0,
        }
    )
    return scen.model_copy(update={"cost_model": cost})


def _times(result: api.RunResult) -> list[tuple]:
    cols = ["first_token_s", "finish_s"]
    return [tuple(r[c] for c in cols) for r in result.requests.select(cols).to_pylist()]


@pytest.mark.parametrize("fast_forward", [True, False])
def test_outputs_reach_the_client_one_host_step_late(constant_step, make_scenario, fast_forward):
    # Steps of 0.5: [0, 0.5] prefills A (3 outputs) and B (2): both first tokens, width 2;
    # [0.5, 1] B's last token (width 2); [1, 1.5] A's last (width 1). Host step: 0.125 +
    # 0.0625 per sequence → 0.25 at width 2, 0.1875 at width 1 (binary-exact).
    constant_step(0.5)
    resolved, _ = api.prepare(_scenario(make_scenario, fast_forward), ".")
    assert resolved.scenario.engine.async_output_processing is True  # V0's default
    lagged = api.run_resolved(resolved, _trace())
    assert _times(lagged) == [(0.5 + 0.25, 1.5 + 0.1875), (0.5 + 0.25, 1.0 + 0.25)]

    off = _scenario(make_scenario, fast_forward, async_output_processing=False)
    resolved_off, _ = api.prepare(off, ".")
    plain = api.run_resolved(resolved_off, _trace())
    assert _times(plain) == [(0.5, 1.5), (0.5, 1.0)]
    assert lagged.timeline.equals(plain.timeline)  # the engine's steps are the same


@pytest.mark.parametrize(
    ("version", "pipeline", "speculative", "expected"),
    [
        ("0.6.0", 1, False, True),
        ("0.7.3", 1, False, True),
        ("0.5.5", 1, False, False),
        ("0.8.0", 1, False, False),
        ("0.19.0", 1, False, False),
        ("0.6.3", 2, False, False),
        ("0.6.3", 1, True, False),
    ],
)
def test_default_follows_vllm(version, pipeline, speculative, expected):
    assert default_async_output_processing(version, pipeline, speculative) is expected


def _raw(**engine) -> dict:
    return {
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "engine": engine,
        "workload": {
            "synthetic": {
                "num_requests": 1,
                "arrival": {"kind": "poisson", "rate_per_s": 1},
                "prompt_tokens": {"kind": "fixed", "value": 8},
                "output_tokens": {"kind": "fixed", "value": 2},
            }
        },
    }


@pytest.mark.parametrize(
    ("engine", "said"),
    [
        ({"version": "0.19.0"}, "vLLM 0.19.0 has no async output processing"),
        ({"version": "0.5.4"}, "vLLM 0.5.4 has no async output processing"),
    ],
)
def test_asking_for_it_where_vllm_has_none_is_an_error(engine, said):
    scen = validate_scenario(_raw(async_output_processing=True, **engine), "lag.yaml")
    with pytest.raises(InputError) as err:
        api.prepare(scen, ".")
    assert "engine.async_output_processing: true, but " + said in str(err.value)


def test_resolved_off_for_v1_and_on_cpu():
    resolved, _ = api.prepare(validate_scenario(_raw(version="0.19.0"), "v1.yaml"), ".")
    assert resolved.scenario.engine.async_output_processing is False
    cpu = _raw(version="0.6.0") | {"model": "tiny-llama", "hardware": {"gpu": "cpu-host"}}
    resolved_cpu, _ = api.prepare(validate_scenario(cpu, "cpu.yaml"), ".")
    assert resolved_cpu.scenario.engine.async_output_processing is False
