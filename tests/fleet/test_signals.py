"""Autoscaling signals are pure functions of a pool sample (`infsim.fleet.signals`)."""

from __future__ import annotations

import pytest

from infsim.fleet.signals import PoolSample, signals
from infsim.fleet.spec import AutoscalingSpec

SAMPLE = PoolSample(
    num_outstanding=(3, 5),
    num_waiting=(1, 2),
    kv_usage=(0.25, 0.5),
    busy=(True, False),
    num_gateway_queued=4,
    num_routed=30,
    interval_s=15.0,
)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("concurrency", 12.0), ("queue_depth", 7.0), ("request_rate", 2.0), ("kv_usage", 0.75),
     ("gpu_busy", 1.0)],
)  # fmt: skip
def test_each_signal(kind: str, expected: float) -> None:
    assert signals.get(kind)(SAMPLE) == expected


def test_the_schema_offers_exactly_the_registered_signals() -> None:
    for kind in signals.names():
        assert AutoscalingSpec(signal=kind, target_per_replica=1).signal == kind
    with pytest.raises(ValueError, match="concurrency"):
        AutoscalingSpec(signal="cpu", target_per_replica=1)
