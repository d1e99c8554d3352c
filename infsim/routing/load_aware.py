"""Randomised and cache-aware routers. Each is pure: it reads the `ClusterView` and, for
the randomised ones, draws from a generator it was given (seeded from the scenario).

- `random`: a uniform replica (the baseline of the power-of-two result).
- `power_of_two`: two distinct replicas drawn uniformly, the one with fewer outstanding
  requests relative to its capacity (`request_load`, as least_outstanding_requests; plain
  counts in a homogeneous fleet) wins (ties: lower index). Mitzenmacher's "power of two
  choices": the maximum load drops from Θ(log n / log log n) to Θ(log log n); SGLang
  router `power_of_two`, Ray Serve's default request router.
- `prefix_aware`: SGLang router's `cache_aware` policy on engine-side state. For each
  replica, the number of leading prefix blocks of the request (its block keys) that the
  replica's prefix cache holds now; the longest match wins (ties: fewer outstanding
  requests, then lower index), unless
    * the match covers less than `cache_threshold` of the request's keyed blocks
      (SGLang: match rate < cache_threshold ⇒ the least loaded worker), or
    * the chosen replica is overloaded against the least loaded one: its outstanding
      requests exceed the least loaded replica's by more than `balance_abs_threshold`
      AND exceed `balance_rel_threshold` × theirs (SGLang's two imbalance thresholds,
      applied to the chosen replica rather than to the fleet's max; Dynamo's KV router
      weighs the same two quantities in one cost),
  in which case the least loaded replica (lowest `request_load`) takes it. The guard's
  thresholds are in outstanding requests, as SGLang's.
  SGLang's router approximates caches with a radix tree of the requests it sent; here
  the view reads the replicas' actual caches, i.e. the "KV events" variant of Dynamo.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infsim.core.request import RequestState
from infsim.routing.base import ClusterView, routers


def _least_loaded(view: ClusterView) -> int:
    return min(range(view.num_replicas), key=view.request_load)


@routers.register("random")
class RandomRouter:
    randomised = True  # built with the router's own generator (build_router)

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def route(self, request: RequestState, view: ClusterView, now: float) -> int:
        return int(self.rng.integers(view.num_replicas))


@routers.register("power_of_two")
class PowerOfTwo:
    randomised = True

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def route(self, request: RequestState, view: ClusterView, now: float) -> int:
        n = view.num_replicas
        if n == 1:
            return 0
        a = int(self.rng.integers(n))
        b = int(self.rng.integers(n - 1))
        b += b >= a  # distinct from a, uniform over the others
        load_a, load_b = view.request_load(a), view.request_load(b)
        if load_a != load_b:
            return a if load_a < load_b else b
        return min(a, b)


class PrefixAwareParams(BaseModel):
    """prefix_aware's options; defaults: SGLang router (sgl-model-gateway) `RouterArgs`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    balance_abs_threshold: int = Field(
        64,
        ge=0,
        description="The longest-prefix replica is skipped for the least loaded one when "
        "its outstanding requests exceed the least loaded replica's by more than this AND "
        "by more than balance_rel_threshold times (SGLang router default 64).",
    )
    balance_rel_threshold: float = Field(
        1.5, ge=1, description="Relative load guard (see balance_abs_threshold; default 1.5)."
    )
    cache_threshold: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Below this fraction of the request's prefix blocks cached anywhere, "
        "route to the least loaded replica (SGLang router default 0.3).",
    )


@routers.register("prefix_aware", params=PrefixAwareParams)
class PrefixAware:
    def __init__(self, **options: float) -> None:
        params = PrefixAwareParams(**options)
        self.balance_abs_threshold = params.balance_abs_threshold
        self.balance_rel_threshold = params.balance_rel_threshold
        self.cache_threshold = params.cache_threshold

    def route(self, request: RequestState, view: ClusterView, now: float) -> int:
        least = _least_loaded(view)
        keys = request.block_keys
        if not keys:
            return least
        n = view.num_replicas
        loads = [view.outstanding_requests(i) for i in range(n)]
        matched = [view.cached_prefix_blocks(i, keys) for i in range(n)]
        best = max(range(n), key=lambda i: (matched[i], -loads[i], -i))
        if not matched[best] or matched[best] < self.cache_threshold * len(keys):
            return least
        if self.overloaded(loads[best], loads[least]):
            return least
        return best

    def overloaded(self, load: int, least_load: int) -> bool:
        return (
            load - least_load > self.balance_abs_threshold
            and load > self.balance_rel_threshold * least_load
        )


ROUTER_STREAM = 0x726F75  # spawn key of the router's generator: one stream per purpose


def build_router(spec, seed: int):
    """The scenario's router (`spec` is the resolved router section: `kind` and the kind's
    options). Randomised routers get their own generator, one stream per purpose."""
    cls = routers.get(spec.kind)
    params = routers.params(spec.kind)
    given = {name: getattr(spec, name, None) for name in (params.model_fields if params else ())}
    options = {name: value for name, value in given.items() if value is not None}
    if getattr(cls, "randomised", False):
        return cls(np.random.default_rng([seed, ROUTER_STREAM]), **options)
    return cls(**options)
