"""The scenario file: what to simulate, as frozen pydantic models (extra fields forbidden).

Dotted paths into these models are public interface (`--set engine.max_num_seqs=64`):
`seed`, `model`, `hardware.gpu`, `deployment.replicas`, `deployment.tensor_parallel` and
`engine.<vLLM engine-arg name>` keep their names. Engine knobs use vLLM's vocabulary and
meaning; a knob left null takes vLLM's default for the hardware, and the resolved value
is written to `scenario.resolved.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from infsim.disagg.spec import DisaggregationSpec
from infsim.fleet.spec import AutoscalingSpec, FailuresSpec, PoolSpec
from infsim.limits import BoundedModel, limit
from infsim.routing import routers
from infsim.scheduling.queues import waiting_queues
from infsim.speculative.spec import SpeculativeSpec
from infsim.workload.spec import WorkloadSpec

SchedulingPolicy = Literal[tuple(waiting_queues.names())]  # type: ignore[valid-type]
"""The registered scheduling policies (`infsim.scheduling.queues`)."""
RouterKind = Literal[tuple(routers.names())]  # type: ignore[valid-type]
"""The registered routers (`infsim.routing`): registering one adds it here."""


class _Frozen(BoundedModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SpeedNoiseSpec(_Frozen):
    cv: float = Field(
        ge=0.0,
        lt=1.0,
        description="Coefficient of variation of the engine's speed: per window, a mean-one "
        "log-normal speed with this spread divides each step's cost-model time.",
    )
    correlation_s: float = Field(
        gt=0.0,
        description="Seconds for which one speed factor holds before an independent one is "
        "drawn (the time scale of the host's speed swings).",
    )


class HardwareSpec(_Frozen):
    gpu: str = Field(
        description="Accelerator name from the hardware catalog (`infsim catalog gpus`), "
        "e.g. h100-sxm, a100-80gb, cpu-host."
    )
    gpus_per_node: int | None = Field(
        None,
        ge=1,
        le=limit("parallel"),
        description="GPUs per node (server); null = the catalog's value for the GPU (8 for "
        "HGX/DGX-class servers). A TP group or pipeline boundary that spans nodes pays the "
        "catalog's inter_node_link instead of its intra_node_link.",
    )
    speed_noise: SpeedNoiseSpec | None = Field(
        None,
        description="Moment-to-moment speed swings of the host (null = none: every step "
        "takes exactly its cost-model time). Estimate them from one-in-flight runs with "
        "`infsim calibrate noise` (docs/calibration.md).",
    )


class DeploymentSpec(_Frozen):
    replicas: int = Field(
        1, ge=1, le=limit("replicas"), description="Number of identical engine replicas (DP)."
    )
    pools: tuple[PoolSpec, ...] | None = Field(
        None,
        description="Heterogeneous or autoscaled fleet: pools of replicas, each with its "
        "GPU, TP, initial/min/max replicas, pricing and cold start (docs/fleet.md); null = "
        "one pool of `replicas` × hardware.gpu.",
    )
    tensor_parallel: int = Field(
        1,
        ge=1,
        le=limit("parallel"),
        description="GPUs per replica (TP); must divide the attention heads.",
    )
    pipeline_parallel: int = Field(
        1,
        ge=1,
        le=limit("parallel"),
        description="Pipeline stages per replica (PP, vLLM --pipeline-parallel-size): layers "
        "split over stages, up to this many batches in flight; a replica has tp × pp GPUs.",
    )
    expert_parallel: int = Field(
        1,
        ge=1,
        le=limit("parallel"),
        description="MoE models only: ranks the experts are spread over (EP, as SGLang's "
        "--ep-size); must divide tensor_parallel, each expert then TP-sharded over "
        "tensor_parallel / expert_parallel GPUs; adds an all-to-all dispatch and combine "
        "per MoE layer. 1 = experts TP-sharded (vLLM's default).",
    )
    weight_precision: str = Field(
        "auto",
        description="Weight precision: auto (the model's dtype), bf16, fp16, fp8, int8, "
        "int4 (weight-only), fp4.",
    )
    kv_cache_precision: str = Field(
        "auto", description="KV-cache dtype (vLLM kv_cache_dtype): auto, bf16, fp16, fp8."
    )
    disaggregation: DisaggregationSpec | None = Field(
        None,
        description="Prefill/decode disaggregation (xPyD) between pools of role prefill "
        "and decode: KV link, streams, layer pipelining, conditional local prefill "
        "(docs/disaggregation.md); null = none.",
    )


class EngineSpec(_Frozen):
    """vLLM V1 engine arguments (same names and meaning)."""

    max_num_seqs: int | None = Field(
        None,
        ge=1,
        le=limit("seqs"),
        description="Max requests running at once; null = vLLM's default.",
    )
    max_num_batched_tokens: int | None = Field(
        None,
        ge=1,
        le=limit("tokens"),
        description="Token budget per engine step; null = vLLM's default.",
    )
    enable_chunked_prefill: bool = Field(
        True, description="Split prompts across steps to fit the token budget."
    )
    long_prefill_token_threshold: int = Field(
        0,
        ge=0,
        le=limit("tokens"),
        description="Cap on one request's prefill tokens per step (0 = none).",
    )
    block_size: int = Field(16, ge=1, le=4096, description="Tokens per KV-cache block.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of each GPU's memory the engine may use."
    )
    num_gpu_blocks_override: int | None = Field(
        None,
        ge=1,
        le=limit("blocks"),
        description="Explicit KV capacity in blocks per replica (as vLLM).",
    )
    kv_cache_memory_bytes: int | None = Field(
        None,
        ge=1,
        le=limit("bytes"),
        description="Explicit KV memory per GPU in bytes (vLLM's knob; CPU: "
        "VLLM_CPU_KVCACHE_SPACE GiB).",
    )
    enable_prefix_caching: bool = Field(
        True, description="Automatic prefix caching with chained block hashes."
    )
    scheduling_policy: SchedulingPolicy = Field(
        "fcfs",
        description="Waiting-queue order and preemption choice: fcfs, or priority (lower "
        "value first); a registered policy (infsim/scheduling/queues.py).",
    )
    max_model_len: int | None = Field(
        None,
        ge=1,
        le=limit("tokens"),
        description="Max prompt+output tokens; null = the model's maximum.",
    )
    speculative: SpeculativeSpec | None = Field(
        None,
        description="Speculative decoding (vLLM --speculative-config): method, "
        "num_speculative_tokens, acceptance, disable_by_batch_size (docs/speculative.md); "
        "null = none.",
    )
    async_scheduling: bool | None = Field(
        None,
        description="vLLM --async-scheduling: the scheduler decides each step while the "
        "previous one runs, so a request that arrives during a step joins the step after "
        "next (docs/engine.md). null = vLLM's default for `version`: on from 0.14.0, off "
        "before, and off with pipeline parallelism or draft_model/ngram speculation.",
    )
    async_output_processing: bool | None = Field(
        None,
        description="vLLM V0's async output processing (--disable-async-output-proc turns "
        "it off): each step's outputs are processed while the next step runs, after its "
        "host work, so every token reaches the client one host step later (docs/engine.md). "
        "null = vLLM's default for `version`: on from 0.6.0 until V1 (0.8), off with "
        "pipeline parallelism, speculative decoding or on CPU; V1 has no such mode.",
    )
    version: str | None = Field(
        None,
        pattern=r"^\d{1,3}\.\d{1,3}(\.\d{1,3})?$",
        description="vLLM release whose defaults apply (e.g. 0.15.1); null = the "
        "calibration table's vLLM version, else the newest release infsim follows.",
    )


class RouterSpec(_Frozen):
    """`kind` and that router's options (its registered params model: names, ranges and
    defaults live there, e.g. `infsim.routing.load_aware.PrefixAwareParams`); options left
    out take the router's defaults at resolution."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)
    kind: RouterKind = Field("round_robin", description="How arriving requests are spread over "
                             "replicas (a registered router).")  # fmt: skip

    @model_validator(mode="after")
    def _options_apply(self) -> RouterSpec:
        given = dict(self.model_extra or {})
        if not given:
            return self
        params = routers.params(self.kind)
        unknown = [n for n in given if params is None or n not in params.model_fields]
        if unknown:
            owners = [k for k in routers.names() if routers.params(k) is not None
                      and all(n in routers.params(k).model_fields for n in unknown)]  # fmt: skip
            where = f"only for kind {', '.join(owners)}" if owners else "no router's option"
            raise ValueError(f"{', '.join(unknown)}: {where}, not {self.kind}")
        params(**{n: v for n, v in given.items() if v is not None})  # ranges, types
        return self

    @classmethod
    def option_names(cls) -> list[str]:
        """Every registered router's option names (for `--set router.<name>=…`)."""
        params = [routers.params(k) for k in routers.names()]
        return sorted({n for p in params if p is not None for n in p.model_fields})

    def options(self) -> dict[str, Any]:
        """The kind's options with its defaults filled in."""
        params = routers.params(self.kind)
        if params is None:
            return {}
        given = {n: v for n, v in (self.model_extra or {}).items() if v is not None}
        return params(**given).model_dump()


class SLOSpec(_Frozen):
    ttft_s: float | None = Field(
        None, gt=0, le=limit("seconds"), description="Max time to first token (s)."
    )
    tpot_s: float | None = Field(
        None, gt=0, le=limit("seconds"), description="Max time per output token (s)."
    )
    e2e_s: float | None = Field(
        None, gt=0, le=limit("seconds"), description="Max end-to-end latency (s)."
    )
    confidence: float | None = Field(
        None,
        ge=0.5,
        lt=1.0,
        description="Meet the SLO with this confidence (e.g. 0.9): `infsim capacity` (and "
        "`infsim plan`) count a configuration as meeting it only when the upper bound of "
        "each latency's prediction interval at this level (the lower bound of attainment) "
        "does, from replications over workload, speed noise and cost-model error "
        "(docs/uncertainty.md). null = the point prediction decides.",
    )


class CostSpec(_Frozen):
    pricing: Literal["on_demand", "spot", "reserved"] = Field(
        "on_demand", description="Which catalog price applies."
    )
    usd_per_gpu_hour: float | None = Field(
        None, ge=0, le=limit("rate"), description="Override the catalog's indicative $/GPU-hour."
    )


class RooflineSpec(_Frozen):
    kind: Literal["roofline"] = "roofline"
    compute_efficiency: float = Field(
        0.6, gt=0, le=1, description="Achieved fraction of peak FLOP/s in GEMMs/attention."
    )
    memory_efficiency: float = Field(
        0.8, gt=0, le=1, description="Achieved fraction of peak memory bandwidth."
    )
    step_overhead_s: float | None = Field(
        None,
        ge=0,
        le=10.0,
        allow_inf_nan=False,
        description="Fixed host cost per engine step (s): scheduler, input preparation, "
        "sampling glue, output processing. null = the calibration's metadata or the "
        "default for engine.version (docs/calibration.md).",
    )
    per_seq_overhead_s: float | None = Field(
        None,
        ge=0,
        le=1.0,
        allow_inf_nan=False,
        description="Extra host cost per scheduled request per step (s); null = default.",
    )
    per_worker_overhead_s: float | None = Field(
        None,
        ge=0,
        le=1.0,
        allow_inf_nan=False,
        description="Extra host cost per step for each worker beyond the first "
        "(tensor × pipeline ranks; handing the step to them) (s); null = default.",
    )
    collective_latency_s: float = Field(
        1e-5, ge=0, description="Latency term α of each TP all-reduce (s)."
    )


def _seconds(description: str) -> float | None:
    return Field(None, ge=0.0, le=10.0, allow_inf_nan=False, description=description)


class FrontendSpec(_Frozen):
    """The serving front end in front of each engine (vLLM's OpenAI API server): host-CPU
    work before a request reaches the scheduler and after each step before the client
    sees its tokens (docs/engine.md). Costs left null come from the calibration table's
    `frontend` rows, else from infsim's measured defaults for vLLM's API server."""

    api_server_count: int = Field(
        1,
        ge=1,
        le=limit("parallel"),
        description="vLLM --api-server-count: API-server processes per replica; requests "
        "queue FIFO for them, and each streams the outputs of its share of the requests.",
    )
    request_s: float | None = _seconds(
        "Fixed API-server time per request before the engine sees it: HTTP parsing, chat "
        "template, hand-off to the engine core (s)."
    )
    request_per_prompt_token_s: float | None = _seconds(
        "API-server time per prompt token before the engine sees it: tokenization (s)."
    )
    output_per_step_s: float | None = _seconds(
        "API-server time per engine step that emits tokens: receiving and decoding the "
        "engine core's output message (s)."
    )
    output_per_token_s: float | None = _seconds(
        "API-server time per streamed token: detokenization and the SSE chunk (s)."
    )
    queueing: bool = Field(
        True,
        description="Requests wait FIFO for a free API server, whose work is slowed by the "
        "streaming it does meanwhile; false = a fixed delay per request (no contention).",
    )


class SimulationSpec(_Frozen):
    fast_forward: bool = Field(
        True,
        description="Price runs of identical decode steps at once (exact; off = one event "
        "per step, for checking).",
    )


class Scenario(_Frozen):
    """One serving configuration and the workload to replay through it."""

    _source_path: Path | None = PrivateAttr(None)
    """The YAML it was loaded from (`load_scenario`): its folder resolves relative paths."""

    @property
    def source_path(self) -> Path | None:
        return self._source_path

    name: str = Field("scenario", description="Label used in reports.")
    description: str = Field("", description="Free text.")
    seed: int = Field(
        0, ge=0, le=limit("seed"), description="Seed of the run's single random generator."
    )
    model: str = Field(
        description="Built-in model name (`infsim catalog models`) or a path to an HF "
        "config.json (relative to the scenario file)."
    )
    workload: WorkloadSpec = Field(description="Trace file or synthetic generator.")
    hardware: HardwareSpec
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    router: RouterSpec = Field(default_factory=RouterSpec)
    slo: SLOSpec = Field(default_factory=SLOSpec)
    cost: CostSpec = Field(default_factory=CostSpec)
    calibration: str = Field(
        "roofline",
        description="Per-op cost tables: 'roofline' (analytic, no table), 'auto' (the "
        "built-in table measured on hardware.gpu, of engine.version when given; the "
        "roofline, with a warning, for a GPU without one), a built-in calibration name "
        "(`infsim calibrate list`) or a calibration directory path.",
    )
    cost_model: RooflineSpec = Field(
        default_factory=RooflineSpec,
        description="Roofline efficiencies (used for ops a calibration lacks) and the "
        "per-step overhead.",
    )
    frontend: FrontendSpec = Field(
        default_factory=FrontendSpec,
        description="The API server in front of each engine (request path and token "
        "streaming; docs/engine.md).",
    )
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    autoscaling: AutoscalingSpec | None = Field(
        None,
        description="Control loop scaling each pool within [min, max]_replicas "
        "(docs/fleet.md); null = fixed pools.",
    )
    failures: FailuresSpec | None = Field(
        None,
        description="Replica failures and spot preemptions, and what happens to their "
        "in-flight requests (docs/fleet.md); null = none.",
    )

    @model_validator(mode="after")
    def _engine_consistent(self) -> Scenario:
        e = self.engine
        if e.num_gpu_blocks_override is not None and e.kv_cache_memory_bytes is not None:
            raise ValueError(
                "engine: set at most one of num_gpu_blocks_override and kv_cache_memory_bytes"
            )
        return self
