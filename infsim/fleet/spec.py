"""Scenario sections of the fleet layer (pydantic v2, frozen, extra fields forbidden).

    deployment:
      pools:                       # optional; without it: one pool "default"
        - name: h100
          gpu: h100-sxm
          tensor_parallel: 1
          replicas: 2              # initial, warm at t = 0
          min_replicas: 1          # autoscaler bounds (null = replicas: a fixed pool)
          max_replicas: 8
          pricing: {kind: spot, usd_per_gpu_hour: null, spot_interruptions_per_hour: 0.1}
          cold_start: {provisioning: {kind: fixed, value_s: 60}, weight_source: local_nvme}
    autoscaling: {signal: concurrency, target_per_replica: 16, interval_s: 15, ...}
    failures: {policy: requeue, replica_mtbf_s: null, spot_notice_s: 120, events: [...]}

Defaults and their sources are in docs/fleet.md; each field's description says which.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from infsim.fleet.signals import signals
from infsim.limits import BoundedModel, limit

FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

GB = 1e9

WEIGHT_SOURCE_BYTES_PER_S: dict[str, float] = {
    # Indicative sustained load bandwidth into GPU memory, per replica (docs/fleet.md §2).
    "local_nvme": 2.0 * GB,  # safetensors from a local NVMe SSD (ServerlessLLM baselines)
    "network_storage": 1.0 * GB,  # object store / network FS, ~10 Gb/s per node
    "host_cache": 20.0 * GB,  # host DRAM (page cache, pinned) over PCIe Gen4/5 x16
    "peer": 40.0 * GB,  # from a warm peer GPU over a 400 Gb/s RDMA NIC
}


class FixedDelaySpec(BoundedModel):
    model_config = FROZEN
    kind: Literal["fixed"] = Field(description="A constant delay.")
    value_s: float = Field(ge=0, description="The delay (s).")


class UniformDelaySpec(BoundedModel):
    model_config = FROZEN
    kind: Literal["uniform"] = Field(description="Uniform on [low_s, high_s].")
    low_s: float = Field(ge=0, description="Smallest delay (s).")
    high_s: float = Field(ge=0, description="Largest delay (s).")

    @model_validator(mode="after")
    def _ordered(self) -> UniformDelaySpec:
        if self.high_s < self.low_s:
            raise ValueError(f"high_s {self.high_s} < low_s {self.low_s}")
        return self


class LognormalDelaySpec(BoundedModel):
    model_config = FROZEN
    kind: Literal["lognormal"] = Field(description="Lognormal with the given median.")
    median_s: float = Field(gt=0, description="Median delay (s).")
    sigma: float = Field(ge=0, description="Standard deviation of log(delay).")


DelaySpec = Annotated[
    FixedDelaySpec | UniformDelaySpec | LognormalDelaySpec, Field(discriminator="kind")
]


class ColdStartSpec(BoundedModel):
    """Cold start = provisioning + weight load + engine start + graph capture."""

    model_config = FROZEN
    provisioning: DelaySpec = Field(
        default_factory=lambda: FixedDelaySpec(kind="fixed", value_s=60.0),
        description="From the scale-up decision to a GPU machine ready for the container "
        "(node launch, join, image pull). Default fixed 60 s: a new cloud GPU node; use a "
        "few seconds for pods on warm nodes (docs/fleet.md §2).",
    )
    weight_source: Literal["local_nvme", "network_storage", "host_cache", "peer"] = Field(
        "local_nvme",
        description="Where the weights are read from; sets the default load bandwidth "
        "(local_nvme 2 GB/s, network_storage 1 GB/s, host_cache 20 GB/s, peer 40 GB/s).",
    )
    weight_load_bytes_per_s: float | None = Field(
        None,
        gt=0,
        le=limit("bytes"),
        description="Override the load bandwidth of weight_source (bytes/s, per replica).",
    )
    engine_start_s: float = Field(
        20.0,
        ge=0,
        description="Engine process start: CUDA init, profiling run, KV allocation, API "
        "server (default 20 s; vLLM startup studies, docs/fleet.md §2).",
    )
    graph_capture_s: float = Field(
        10.0,
        ge=0,
        description="torch.compile (from its cache) and CUDA graph capture (default 10 s; "
        "0 with --enforce-eager; 30-60 s with a cold compile cache).",
    )


class PricingSpec(BoundedModel):
    model_config = FROZEN
    kind: Literal["on_demand", "spot", "reserved"] = Field(
        "on_demand", description="Offer type; selects the catalog price."
    )
    usd_per_gpu_hour: float | None = Field(
        None, ge=0, description="Price per GPU-hour; null = the GPU catalog's price."
    )
    spot_interruptions_per_hour: float = Field(
        0.0,
        ge=0,
        description="Spot preemptions per replica-hour (kind spot only; 0 = none). Each "
        "gives failures.spot_notice_s of notice, then the replica is lost.",
    )

    @model_validator(mode="after")
    def _spot_only(self) -> PricingSpec:
        if self.spot_interruptions_per_hour and self.kind != "spot":
            raise ValueError("spot_interruptions_per_hour needs kind: spot")
        return self


class PoolSpec(BoundedModel):
    """A group of identical replicas (same GPU, TP, price and cold start)."""

    model_config = FROZEN
    name: str = Field(min_length=1, description="Pool label (outputs, failure events).")
    role: Literal["mixed", "prefill", "decode"] = Field(
        "mixed",
        description="What its replicas run: mixed (whole requests), or with "
        "deployment.disaggregation prefill (prompts only, KV sent on) or decode (requests "
        "whose KV arrives from a prefill pool) (docs/disaggregation.md).",
    )
    gpu: str | None = Field(
        None, description="Accelerator name from the hardware catalog; null = hardware.gpu."
    )
    tensor_parallel: int | None = Field(
        None, ge=1, description="GPUs per replica (TP); null = deployment.tensor_parallel."
    )
    replicas: int = Field(
        1, ge=0, le=limit("replicas"), description="Replicas warm and serving at t = 0."
    )
    min_replicas: int | None = Field(
        None,
        ge=0,
        le=limit("replicas"),
        description="Autoscaler lower bound; null = replicas (fixed pool).",
    )
    max_replicas: int | None = Field(
        None,
        ge=0,
        le=limit("replicas"),
        description="Autoscaler upper bound; null = replicas (fixed pool).",
    )
    pricing: PricingSpec = Field(default_factory=PricingSpec, description="How it is billed.")
    cold_start: ColdStartSpec = Field(
        default_factory=ColdStartSpec,
        description="How long a new replica takes to serve (scale-up, replacement).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> PoolSpec:
        lo = self.replicas if self.min_replicas is None else self.min_replicas
        hi = self.replicas if self.max_replicas is None else self.max_replicas
        if not lo <= self.replicas <= hi:
            raise ValueError(
                f"pool {self.name}: need min_replicas ({lo}) <= replicas ({self.replicas}) "
                f"<= max_replicas ({hi})"
            )
        return self

    @property
    def min_count(self) -> int:
        return self.replicas if self.min_replicas is None else self.min_replicas

    @property
    def max_count(self) -> int:
        return self.replicas if self.max_replicas is None else self.max_replicas


SignalKind = Literal[tuple(signals.names())]  # type: ignore[valid-type]
"""The registered autoscaling signals (`infsim.fleet.signals`)."""


class AutoscalingSpec(BoundedModel):
    """A Kubernetes-HPA-style control loop per pool, with Knative's panic mode and
    scale-to-zero (FORMATS.md §3 vocabulary). Pools scale within [min, max]_replicas."""

    model_config = FROZEN
    signal: SignalKind = Field(
        "concurrency",
        description="Per-pool metric: requests in flight (waiting + running + gateway "
        "queue), waiting requests (+ gateway queue), routed requests per second, KV "
        "usage fraction, or fraction of replicas busy.",
    )
    target_per_replica: float = Field(
        gt=0,
        description="Target metric value per serving replica (e.g. 16 concurrent requests; "
        "0.7 KV usage). Knative: target; Ray Serve: target_ongoing_requests.",
    )
    interval_s: float = Field(
        15.0, gt=0, description="Control-loop period (HPA sync period default 15 s)."
    )
    window_s: float = Field(
        60.0, gt=0, description="Averaging window of the signal (Knative stable-window 60 s)."
    )
    tolerance: float = Field(
        0.1, ge=0, description="No change while |metric/target - 1| <= tolerance (HPA 0.1)."
    )
    scale_up_stabilization_s: float = Field(
        0.0, ge=0, description="Scale up to the lowest recommendation of this window (HPA 0)."
    )
    scale_down_stabilization_s: float = Field(
        300.0,
        ge=0,
        description="Scale down to the highest recommendation of this window (HPA 300 s).",
    )
    scale_down_delay_s: float = Field(
        0.0,
        ge=0,
        description="No scale-down within this long after the last scale-up (KEDA "
        "cooldown-style; Knative scale-down-delay 0).",
    )
    panic_window_s: float | None = Field(
        None,
        gt=0,
        description="Knative panic window (6 s = 10% of 60 s); null = no panic mode.",
    )
    panic_threshold: float = Field(
        2.0,
        gt=1,
        description="Panic when the panic-window demand reaches this many times the "
        "current replicas (Knative 200%).",
    )


class FailureEventSpec(BoundedModel):
    """One scheduled event against a pool's replica."""

    model_config = FROZEN
    at_s: float = Field(ge=0, description="Simulated time of the event (s).")
    pool: str = Field("default", description="Pool name.")
    replica: int = Field(
        0,
        ge=0,
        description="Which of the pool's live replicas (provisioning to draining), by "
        "age: 0 = the oldest.",
    )
    kind: Literal["failure", "preemption"] = Field(
        "failure",
        description="failure: lost at at_s; preemption: spot notice at at_s, lost "
        "spot_notice_s later.",
    )


class FailuresSpec(BoundedModel):
    model_config = FROZEN
    policy: Literal["requeue", "fail"] = Field(
        "requeue",
        description="In-flight requests of a lost replica: requeue (retried from scratch "
        "through the gateway, arrival time kept) or fail (counted as failed).",
    )
    max_retries: int = Field(
        3, ge=0, description="requeue: a request lost more often than this fails."
    )
    replica_mtbf_s: float | None = Field(
        None,
        gt=0,
        description="Random failures: mean time between failures of one replica (s), "
        "exponential; null = none.",
    )
    spot_notice_s: float = Field(
        120.0,
        ge=0,
        description="Spot preemption notice (AWS EC2: two minutes; GCP: 30 s). The "
        "replica drains during the notice, then is lost.",
    )
    events: tuple[FailureEventSpec, ...] = Field(
        (), description="Scheduled failures and preemptions."
    )
