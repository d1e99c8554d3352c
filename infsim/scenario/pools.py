"""Pools of a fleet, each resolved like a one-pool scenario (its own GPU, TP, vLLM
defaults, KV capacity, cost model and price).

Without `deployment.pools` the fleet is one pool "default" made of `hardware.gpu` ×
`deployment` and priced by `cost:`, exactly as before pools existed. A pool's `gpu`
and `tensor_parallel` default to `hardware.gpu` and `deployment.tensor_parallel`.

A `ResolvedPool` is what the simulator builds a pool's replicas from: every field
resolved, nothing left to look up in a scenario. Prefill and decode roles are on its
`spec` (`PoolSpec.role`); disaggregation names its prefill and decode pools in
`deployment.disaggregation` (infsim/disagg/). Routers and the autoscaler work per pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from infsim.catalog.hardware import GPUSpec
from infsim.cost.config import ReplicaConfig
from infsim.errors import InputError
from infsim.fleet.spec import PoolSpec, PricingSpec
from infsim.frontend.costs import FrontendCosts, frontend_costs
from infsim.kvcache.capacity import KVCapacity
from infsim.scenario.schema import CostSpec, EngineSpec, HardwareSpec, Scenario, SpeedNoiseSpec

if TYPE_CHECKING:  # resolve.py imports this module (pools resolve like scenarios)
    from infsim.scenario.resolve import ResolvedScenario


@dataclass(frozen=True)
class ResolvedPool:
    """One pool, as its replicas are built: the cost model's `ReplicaConfig`, the resolved
    engine section (scheduler limits, KV block size, prefix caching, speculation, async
    scheduling), the KV capacity per replica, the API-server costs, the host's speed noise
    and the price."""

    spec: PoolSpec  # gpu and tensor_parallel filled in
    replica: ReplicaConfig
    engine: EngineSpec
    kv: KVCapacity
    frontend: FrontendCosts
    speed_noise: SpeedNoiseSpec | None
    usd_per_gpu_hour: float

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def gpu(self) -> GPUSpec:
        return self.replica.gpu

    @property
    def gpus_per_replica(self) -> int:
        """All GPUs of one replica (TP × PP)."""
        return self.replica.num_workers

    @property
    def weight_bytes_per_replica(self) -> float:
        return self.kv.weight_bytes_per_gpu * self.gpus_per_replica


def pool_of(spec: PoolSpec, rs: ResolvedScenario) -> ResolvedPool:
    """The pool `spec` built from `rs`, the pool resolved as a one-pool scenario."""
    s = rs.scenario
    return ResolvedPool(
        spec=spec,
        replica=rs.replica(),
        engine=s.engine,
        kv=rs.kv,
        frontend=frontend_costs(s.frontend),
        speed_noise=s.hardware.speed_noise,
        usd_per_gpu_hour=rs.usd_per_gpu_hour,
    )


def default_pool(rs: ResolvedScenario) -> ResolvedPool:
    """The scenario's single pool (`hardware.gpu` × `deployment`, priced by `cost:`)."""
    s = rs.scenario
    spec = PoolSpec(
        name="default",
        gpu=rs.gpu.name,
        tensor_parallel=s.deployment.tensor_parallel,
        replicas=s.deployment.replicas,
        pricing=PricingSpec(kind=s.cost.pricing, usd_per_gpu_hour=s.cost.usd_per_gpu_hour),
    )
    return pool_of(spec, rs)


def fleet_pools(rs: ResolvedScenario) -> tuple[ResolvedPool, ...]:
    """The fleet's pools: `deployment.pools` resolved, else the one default pool."""
    return rs.pools if rs.pools else (default_pool(rs),)


def resolve_pools(scenario: Scenario, base_dir: Path, source: str) -> tuple[ResolvedPool, ...]:
    """Resolve each `deployment.pools` entry as a scenario of its own."""
    from infsim.scenario.resolve import resolve  # resolve() calls us: import late (one package)

    dep = scenario.deployment
    pools = dep.pools or ()
    _check_pools(scenario, source)
    out = []
    for i, pool in enumerate(pools):
        gpu = pool.gpu or scenario.hardware.gpu
        tp = pool.tensor_parallel or dep.tensor_parallel
        sub = scenario.model_copy(
            update={
                # The pool's GPU; the host's speed noise applies to every pool.
                "hardware": HardwareSpec(gpu=gpu, speed_noise=scenario.hardware.speed_noise),
                "deployment": dep.model_copy(
                    update={
                        "pools": None,
                        "disaggregation": None,
                        "replicas": max(pool.replicas, 1),
                        "tensor_parallel": tp,
                    }
                ),
                "autoscaling": None,  # fleet sections belong to the whole fleet
                "failures": None,
                "cost": CostSpec(
                    pricing=pool.pricing.kind, usd_per_gpu_hour=pool.pricing.usd_per_gpu_hour
                ),
            }
        )
        try:
            resolved = resolve(sub, base_dir, source)
        except InputError as err:
            raise InputError(f"deployment.pools[{i}] ({pool.name}): {err}") from None
        filled = pool.model_copy(update={"gpu": resolved.gpu.name, "tensor_parallel": tp})
        out.append(pool_of(filled, resolved))
    return tuple(out)


def _check_pools(scenario: Scenario, source: str) -> None:
    dep = scenario.deployment
    pools = dep.pools or ()
    if not pools:
        raise InputError(f"{source}: deployment.pools: empty; give at least one pool or omit it")
    if "replicas" in dep.model_fields_set:
        raise InputError(
            f"{source}: deployment.replicas: not allowed with deployment.pools (each pool "
            "has its own replicas); remove it"
        )
    names = [p.name for p in pools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{source}: deployment.pools: duplicate pool names {dupes}")
    if sum(p.max_count for p in pools) == 0:
        raise InputError(
            f"{source}: deployment.pools: every pool has max_replicas 0; at least one "
            "replica must be possible"
        )
    if scenario.autoscaling is None and sum(p.replicas for p in pools) == 0:
        raise InputError(
            f"{source}: deployment.pools: no pool has replicas at t = 0 and there is no "
            "autoscaling: section to start one, so no request could ever be served; give "
            "a pool replicas >= 1 or add autoscaling:"
        )


def check_fleet_sections(scenario: Scenario, pools: tuple[ResolvedPool, ...], source: str) -> None:
    """`autoscaling:` needs a pool that can scale; failure events need existing pools."""
    specs = [p.spec for p in pools]
    if scenario.autoscaling is not None and not any(p.min_count < p.max_count for p in specs):
        raise InputError(
            f"{source}: autoscaling: no pool can scale (it needs deployment.pools with a "
            "pool whose min_replicas < max_replicas); add such a pool or remove autoscaling:"
        )
    check_failure_events(scenario, [p.name for p in specs] or ["default"], source)


def check_failure_events(scenario: Scenario, names: list[str], source: str) -> None:
    failures = getattr(scenario, "failures", None)
    for i, event in enumerate(failures.events if failures else ()):
        if event.pool not in names:
            raise InputError(
                f"{source}: failures.events[{i}].pool: unknown pool {event.pool!r}; the "
                f"pools are {names}"
            )


def fleet_label(rs: ResolvedScenario) -> str:
    """'2× H100-SXM TP1 + 2× L40S TP1' for pools; the deployment label otherwise."""
    if not rs.pools:
        return rs.deployment_label()
    return " + ".join(
        f"{p.spec.replicas}× {p.gpu.name} TP{p.spec.tensor_parallel}"
        + (
            f" [{p.spec.min_count}..{p.spec.max_count}]"
            if p.spec.min_count < p.spec.max_count
            else ""
        )
        for p in rs.pools
    )
