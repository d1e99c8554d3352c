"""Cold start of a new replica, from first principles. Pure; randomness from the caller.

    cold start = provisioning (a delay distribution: node launch, join, image pull)
               + weight load (weight bytes of the replica / load bandwidth of the source)
               + engine start (process, CUDA init, profiling run, KV allocation)
               + graph capture (torch.compile from cache, CUDA graphs)

The replica's weight bytes are all its GPUs' shards together: the load bandwidth is per
replica (one node's storage or NIC), so TP does not make loading faster. Defaults and
their sources: docs/fleet.md §2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infsim.fleet.spec import WEIGHT_SOURCE_BYTES_PER_S, ColdStartSpec, DelaySpec


@dataclass(frozen=True)
class ColdStart:
    """One replica's cold-start phases (s)."""

    provisioning_s: float
    weight_load_s: float
    engine_start_s: float
    graph_capture_s: float

    @property
    def total_s(self) -> float:
        return (
            self.provisioning_s + self.weight_load_s + self.engine_start_s + (self.graph_capture_s)
        )


def sample_delay(spec: DelaySpec, rng: np.random.Generator) -> float:
    """One draw of a delay distribution; `fixed` draws nothing from `rng`."""
    if spec.kind == "fixed":
        return spec.value_s
    if spec.kind == "uniform":
        return float(rng.uniform(spec.low_s, spec.high_s))
    return float(spec.median_s * np.exp(spec.sigma * rng.standard_normal()))


class ColdStartModel:
    def __init__(self, spec: ColdStartSpec, weight_bytes: float) -> None:
        self.spec = spec
        self.weight_bytes = weight_bytes
        self.load_bytes_per_s = (
            spec.weight_load_bytes_per_s or (WEIGHT_SOURCE_BYTES_PER_S[spec.weight_source])
        )

    @property
    def weight_load_s(self) -> float:
        return self.weight_bytes / self.load_bytes_per_s

    def sample(self, rng: np.random.Generator) -> ColdStart:
        return ColdStart(
            provisioning_s=sample_delay(self.spec.provisioning, rng),
            weight_load_s=self.weight_load_s,
            engine_start_s=self.spec.engine_start_s,
            graph_capture_s=self.spec.graph_capture_s,
        )
