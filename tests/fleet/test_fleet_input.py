"""Bad fleet input: one InputError naming the field path (CLI exit code 2)."""

from __future__ import annotations

from typing import Any

import pytest

from infsim import api
from infsim.errors import InputError
from infsim.scenario.load import validate_scenario


def raw(**kw: Any) -> dict[str, Any]:
    return {
        "name": "x",
        "model": "llama-3.1-8b",
        "hardware": {"gpu": "h100-sxm"},
        "workload": {
            "synthetic": {
                "num_requests": 1,
                "arrival": {"kind": "poisson", "rate_per_s": 1},
                "prompt_tokens": {"kind": "fixed", "value": 8},
                "output_tokens": {"kind": "fixed", "value": 1},
            }
        },
        **kw,
    }


def prepare(r: dict[str, Any]):
    return api.prepare(validate_scenario(r, "x.yaml"), ".")


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"deployment": {"replicas": 2, "pools": [{"name": "a"}]}}, "deployment.replicas"),
        ({"deployment": {"pools": [{"name": "a"}, {"name": "a"}]}}, "duplicate pool names"),
        ({"deployment": {"pools": [{"name": "a", "gpu": "nope"}]}}, "deployment.pools[0] (a)"),
        (
            {"deployment": {"pools": [{"name": "a", "replicas": 0, "max_replicas": 2}]}},
            "no pool has replicas",
        ),
        (
            {"deployment": {"pools": [{"name": "a"}]}, "failures": {"events": [{"at_s": 1}]}},
            "failures.events[0].pool",
        ),
    ],
)
def test_resolve_errors_name_the_field(kw, needle) -> None:
    with pytest.raises(InputError, match=None) as err:
        prepare(raw(**kw))
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"deployment": {"pools": [{"name": "a", "replicas": 3, "max_replicas": 2}]}}, "pools"),
        (
            {
                "deployment": {
                    "pools": [{"name": "a", "pricing": {"spot_interruptions_per_hour": 1}}]
                }
            },
            "spot_interruptions_per_hour",
        ),
        ({"autoscaling": {"target_per_replica": 0}}, "autoscaling.target_per_replica"),
        ({"autoscaling": {"target_per_replica": 1, "signl": "x"}}, "signl"),
        ({"failures": {"policy": "retry"}}, "failures.policy"),
    ],
)
def test_schema_errors_name_the_field(kw, needle) -> None:
    with pytest.raises(InputError) as err:
        validate_scenario(raw(**kw), "x.yaml")
    assert needle in str(err.value)


def test_autoscaling_without_a_scalable_pool_is_an_error() -> None:
    with pytest.raises(InputError) as err:
        prepare(raw(autoscaling={"target_per_replica": 4}))
    assert "autoscaling: no pool can scale" in str(err.value)
