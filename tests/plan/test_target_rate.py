"""workload.target_rate_per_s: an absolute mean arrival rate, exclusive with the scales."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infsim import api
from infsim.errors import InputError
from infsim.workload.spec import WorkloadSpec, build_trace, mean_rate_per_s

REPO = Path(__file__).resolve().parents[2]
POISSON = {
    "num_requests": 2000,
    "arrival": {"kind": "poisson", "rate_per_s": 3.0},
    "prompt_tokens": {"kind": "fixed", "value": 100},
    "output_tokens": {"kind": "fixed", "value": 10},
}


def _trace(**workload):
    spec = WorkloadSpec.model_validate(workload)
    return build_trace(spec, base_dir=REPO, rng=np.random.default_rng(0))


def test_a_synthetic_workload_runs_at_the_target_mean_rate():
    trace = _trace(synthetic=POISSON, target_rate_per_s=12.5)
    assert trace.num_requests == 2000
    assert mean_rate_per_s(trace) == pytest.approx(12.5, rel=1e-9)
    # the shape is the generator's: the same gaps, only scaled
    plain = _trace(synthetic=POISSON)
    ratio = np.diff(plain.arrival_s)[:50] / np.diff(trace.arrival_s)[:50]
    assert np.allclose(ratio, ratio[0])
    assert ratio[0] == pytest.approx(12.5 / mean_rate_per_s(plain))


def test_a_replayed_trace_runs_at_the_target_rate_after_the_request_cap():
    source = {"path": "traces/azure_conv_2023_first3000.csv", "format": "azure"}
    trace = _trace(trace=source, target_rate_per_s=10, max_requests=500)
    assert trace.num_requests == 500
    assert mean_rate_per_s(trace) == pytest.approx(10.0, rel=1e-9)


@pytest.mark.parametrize("other", ["rate_scale", "time_scale"])
def test_target_rate_is_exclusive_with_the_scales(tiny: Path, other: str):
    with pytest.raises(InputError) as err:
        api.load_scenario(tiny, ["workload.target_rate_per_s=5", f"workload.{other}=2"])
    text = str(err.value)
    assert "workload" in text
    assert other in text
    assert "target_rate_per_s" in text
    assert "not both" in text


def test_a_workload_with_no_spread_in_time_has_no_rate_to_scale():
    one = dict(POISSON, num_requests=1)
    with pytest.raises(InputError, match=r"workload\.target_rate_per_s: .* all arrive at t = 0"):
        _trace(synthetic=one, target_rate_per_s=5)


def test_zero_or_negative_rates_are_refused(tiny: Path):
    with pytest.raises(InputError, match="target_rate_per_s"):
        api.load_scenario(tiny, ["workload.target_rate_per_s=0"])
