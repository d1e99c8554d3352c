"""`ResolvedRun`: everything one simulation is built from, frozen and fully resolved.

The simulator (`infsim.sim`) reads nothing else: no scenario, no catalog, no defaults.

    Scenario ──resolve()──► ResolvedScenario ──resolved_run()──► ResolvedRun ──► simulate()
    (YAML, validated)       (catalog specs, vLLM         (pools ≥ 1, router, SLO,
                             defaults, KV, price)         workload, fleet sections)

`ResolvedScenario` stays the reporting view (model, GPU and price of the scenario's own
deployment, the resolved scenario written to `scenario.resolved.yaml`).
"""

from __future__ import annotations

from dataclasses import dataclass

from infsim.disagg.spec import DisaggregationSpec
from infsim.fleet.spec import AutoscalingSpec, FailuresSpec
from infsim.scenario.pools import ResolvedPool, fleet_pools
from infsim.scenario.resolve import ResolvedScenario
from infsim.scenario.schema import RouterSpec, SLOSpec
from infsim.workload.spec import WorkloadSpec


@dataclass(frozen=True)
class ResolvedRun:
    """One simulation's configuration. `pools` always holds at least one pool: the
    scenario's `deployment.pools`, else the default pool of `hardware.gpu` × `deployment`
    (`explicit_pools` says which)."""

    pools: tuple[ResolvedPool, ...]
    router: RouterSpec  # kind and options, defaults filled in
    slo: SLOSpec
    workload: WorkloadSpec
    seed: int
    fast_forward: bool
    prefix_block_size_tokens: int | None
    """The KV block size requests' prefix hash chains are keyed in (every pool shares the
    scenario's engine.block_size); None with prefix caching off."""
    explicit_pools: bool = False
    autoscaling: AutoscalingSpec | None = None
    failures: FailuresSpec | None = None
    disaggregation: DisaggregationSpec | None = None

    def __post_init__(self) -> None:
        if not self.pools:
            raise ValueError("a ResolvedRun needs at least one pool")

    @property
    def num_gpus(self) -> int:
        """GPUs of the fleet at t = 0 (every pool's initial replicas)."""
        return sum(p.spec.replicas * p.gpus_per_replica for p in self.pools)


def resolved_run(rs: ResolvedScenario) -> ResolvedRun:
    """The run a resolved scenario describes (its pools as they stand: a test may have
    replaced them)."""
    s = rs.scenario
    engine = s.engine
    return ResolvedRun(
        pools=fleet_pools(rs),
        router=s.router,
        slo=s.slo,
        workload=s.workload,
        seed=s.seed,
        fast_forward=s.simulation.fast_forward,
        prefix_block_size_tokens=engine.block_size if engine.enable_prefix_caching else None,
        explicit_pools=bool(rs.pools),
        autoscaling=s.autoscaling,
        failures=s.failures,
        disaggregation=s.deployment.disaggregation,
    )
