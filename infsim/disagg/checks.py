"""Checks of `deployment.disaggregation` against the pools (raised as InputError)."""

from __future__ import annotations

from infsim.errors import InputError


def check_disaggregation(scenario, source: str) -> None:
    """Disaggregation needs ≥ 1 prefill and ≥ 1 decode pool (a mixed pool may coexist);
    pools with those roles need disaggregation; features not wired with it are refused."""
    dep = scenario.deployment
    spec = dep.disaggregation
    pools = dep.pools or ()
    roles = [p.role for p in pools]
    if spec is None:
        for i, pool in enumerate(pools):
            if pool.role != "mixed":
                raise InputError(
                    f"{source}: deployment.pools[{i}].role: {pool.role} needs "
                    "deployment.disaggregation (the KV link between prefill and decode "
                    "pools); add it, or use role: mixed"
                )
        return
    missing = [r for r in ("prefill", "decode") if r not in roles]
    if missing:
        raise InputError(
            f"{source}: deployment.disaggregation: needs at least one pool of role "
            f"prefill and one of role decode in deployment.pools; found roles "
            f"{roles or 'none (no deployment.pools)'}, missing {missing}. A mixed pool "
            "may coexist."
        )
    for i, pool in enumerate(pools):
        if pool.role in ("prefill", "decode") and pool.replicas == 0:
            raise InputError(
                f"{source}: deployment.pools[{i}].replicas: a {pool.role} pool needs at "
                "least one replica (disaggregated pools are fixed: no autoscaling yet)"
            )
    unsupported = [
        (name, getattr(scenario, name) is not None) for name in ("autoscaling", "failures")
    ]
    unsupported.append(("deployment.pipeline_parallel", dep.pipeline_parallel > 1))
    for name, present in unsupported:
        if present:
            raise InputError(
                f"{source}: {name}: not supported together with deployment.disaggregation "
                "yet (fixed prefill and decode pools, PP = 1); remove one of them"
            )
