"""From a validated `Scenario` to everything a run needs: catalog specs, vLLM defaults,
KV capacity and price. Checks that need the catalogs (TP vs heads, weights vs memory)
live here and raise `InputError` with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from infsim.catalog import precision as prec
from infsim.catalog.hardware import GPUSpec, load_gpu
from infsim.catalog.model import load_model
from infsim.catalog.model_spec import ModelSpec
from infsim.cost.config import HostOverhead, ReplicaConfig
from infsim.cost.store import (
    AUTO,
    AutoChoice,
    load_rows,
    pick_auto,
    resolve_calibration,
    tell_auto,
)
from infsim.cost.table import CalibrationMeta
from infsim.errors import InputError
from infsim.frontend.costs import HOST_DEFAULTS, resolve_costs
from infsim.kvcache.capacity import GPU_RUNTIME_OVERHEAD_BYTES, KVCapacity, kv_capacity
from infsim.parallel.fit import check_fit, check_layout, check_links
from infsim.scenario.host_overhead import TERMS, resolve_step_overhead
from infsim.scenario.schema import Scenario
from infsim.scenario.vllm_defaults import (
    NEWEST_VLLM,
    cuda_graph_defaults,
    default_async_output_processing,
    default_async_scheduling,
    engine_version,
    has_async_output_processing,
)
from infsim.speculative.memory import proposer_spec, with_proposer

if TYPE_CHECKING:  # pools.py resolves each pool through resolve() (one package)
    import pandas as pd

    from infsim.scenario.pools import ResolvedPool

GIB = 1 << 30


@dataclass(frozen=True)
class ResolvedScenario:
    """A scenario with every default filled in (`scenario` is the resolved copy)."""

    scenario: Scenario
    base_dir: Path
    model: ModelSpec
    gpu: GPUSpec
    kv: KVCapacity
    usd_per_gpu_hour: float
    calibration_dir: Path | None = None
    calibration_rows: pd.DataFrame | None = field(default=None, repr=False)
    pools: tuple[ResolvedPool, ...] = ()  # one per deployment.pools entry; () without
    draft_model: ModelSpec | None = None  # speculative proposer (draft model or head)
    step_overhead: HostOverhead | None = None  # terms also filled into scenario.cost_model
    frontend_source: str = ""  # where the filled-in frontend costs come from
    calibration_choice: dict | None = None  # `calibration: auto`'s pick (AutoChoice.record)

    def deployment_label(self) -> str:
        d = self.scenario.deployment
        label = f"{d.replicas}× {self.gpu.name} TP{d.tensor_parallel}"
        if d.pipeline_parallel > 1:
            label += f"×PP{d.pipeline_parallel}"
        if d.expert_parallel > 1:
            label += f" EP{d.expert_parallel}"
        return label

    @property
    def num_gpus(self) -> int:
        d = self.scenario.deployment
        return d.replicas * d.tensor_parallel * d.pipeline_parallel

    def replica(self) -> ReplicaConfig:
        """What one replica's cost model is built from (`infsim.cost.config`)."""
        s = self.scenario
        dep, eng, cm = s.deployment, s.engine, s.cost_model
        overhead = self.step_overhead
        if overhead is None:  # a hand-built ResolvedScenario: the release's default
            overhead = resolve_step_overhead(cm, None, eng.version or NEWEST_VLLM)
        graph_max_tokens, prefill_in_graph = cuda_graph_defaults(eng.version or NEWEST_VLLM)
        return ReplicaConfig(
            model=self.model,
            gpu=self.gpu,
            tensor_parallel=dep.tensor_parallel,
            pipeline_parallel=dep.pipeline_parallel,
            expert_parallel=dep.expert_parallel,
            gpus_per_node=s.hardware.gpus_per_node or self.gpu.gpus_per_node,
            weight_precision=dep.weight_precision,
            kv_cache_precision=dep.kv_cache_precision,
            max_num_batched_tokens=eng.max_num_batched_tokens,
            max_num_seqs=eng.max_num_seqs,
            max_model_len=eng.max_model_len,
            compute_efficiency=cm.compute_efficiency,
            memory_efficiency=cm.memory_efficiency,
            collective_latency_s=cm.collective_latency_s,
            step_overhead=overhead,
            calibration_name=self.calibration_dir.name if self.calibration_dir else "roofline",
            calibration_rows=self.calibration_rows,
            speculative=eng.speculative,
            draft_model=self.draft_model,
            calibration_choice=self.calibration_choice,
            cuda_graph_max_tokens=graph_max_tokens,
            prefill_in_cuda_graph=prefill_in_graph,
        )


def vllm_batch_defaults(gpu: GPUSpec) -> tuple[int, int]:
    """(max_num_seqs, max_num_batched_tokens) of `vllm serve` for this device (vLLM 0.33
    EngineArgs.get_batch_defaults, API-server column): ≥160 GiB: 1024/16384; ≥70 GiB and
    not A100: 1024/8192; otherwise 256/2048."""
    mem_gib = gpu.memory_bytes / GIB
    if mem_gib >= 160:
        return 1024, 16384
    if mem_gib >= 70 and "a100" not in gpu.name.lower():
        return 1024, 8192
    return 256, 2048


def resolve(scenario: Scenario, base_dir: Path, source: str = "scenario") -> ResolvedScenario:
    model = _located(lambda: load_model(scenario.model, base_dir=base_dir), source, "model")
    gpu = _located(lambda: load_gpu(scenario.hardware.gpu), source, "hardware.gpu")
    dep, eng = scenario.deployment, scenario.engine
    weight_prec = _located(
        lambda: prec.resolve(dep.weight_precision, model.dtype),
        source,
        "deployment.weight_precision",
    )
    kv_prec = _located(
        lambda: prec.resolve(dep.kv_cache_precision, model.dtype),
        source,
        "deployment.kv_cache_precision",
    )
    _check_tensor_parallel(model, dep.tensor_parallel, source)
    if scenario.hardware.speed_noise is not None and dep.pipeline_parallel > 1:
        raise InputError(
            f"{source}: hardware.speed_noise is not modelled with deployment."
            f"pipeline_parallel = {dep.pipeline_parallel} (the pipelined replica times "
            "stages, not steps); remove hardware.speed_noise or use pipeline_parallel: 1"
        )
    check_layout(model, dep.pipeline_parallel, dep.expert_parallel, dep.tensor_parallel, source)
    per_node = scenario.hardware.gpus_per_node or gpu.gpus_per_node
    check_links(gpu, dep.tensor_parallel, dep.pipeline_parallel, per_node, source)
    seqs_default, tokens_default = vllm_batch_defaults(gpu)
    engine = eng.model_copy(
        update={
            "max_num_seqs": eng.max_num_seqs or seqs_default,
            "max_num_batched_tokens": eng.max_num_batched_tokens or tokens_default,
            "max_model_len": eng.max_model_len or model.max_position_embeddings,
        }
    )
    deployment = dep.model_copy(
        update={"weight_precision": weight_prec, "kv_cache_precision": kv_prec}
    )
    kv = kv_capacity(
        model=model,
        memory_bytes=gpu.memory_bytes,
        tensor_parallel=dep.tensor_parallel,
        weight_precision=weight_prec,
        kv_precision=kv_prec,
        block_size=engine.block_size,
        gpu_memory_utilization=engine.gpu_memory_utilization,
        max_num_batched_tokens=engine.max_num_batched_tokens,
        max_num_seqs=engine.max_num_seqs,
        runtime_overhead_bytes=0 if gpu.vendor.lower() == "cpu" else GPU_RUNTIME_OVERHEAD_BYTES,
        num_gpu_blocks_override=engine.num_gpu_blocks_override,
        kv_cache_memory_bytes=engine.kv_cache_memory_bytes,
        pipeline_parallel=dep.pipeline_parallel,
    )
    spec, draft = eng.speculative, None
    if spec is not None:
        draft = _located(lambda: proposer_spec(spec, model, base_dir, dep.tensor_parallel,
                                               dep.pipeline_parallel),
                         source, "engine.speculative")  # fmt: skip
    if spec is not None and draft is not None:
        kv = with_proposer(kv, spec, draft, tensor_parallel=dep.tensor_parallel,
                           weight_precision=weight_prec, kv_precision=kv_prec)  # fmt: skip
    check_fit(
        model,
        gpu,
        kv,
        utilization=engine.gpu_memory_utilization,
        max_model_len=eng.max_model_len,
        weight_precision=weight_prec,
        parallel=(dep.tensor_parallel, dep.pipeline_parallel, dep.expert_parallel),
        source=source,
    )
    pools = _pools(scenario, base_dir, source)
    cal_dir, cal_rows, cal_meta, choice = _calibration(scenario, base_dir, gpu, source)
    version = engine_version(eng.version, cal_meta and cal_meta.engine,
                             cal_meta and cal_meta.engine_version)  # fmt: skip
    cpu = gpu.vendor.lower() == "cpu"
    async_on = _async_scheduling(scenario, version, source, cpu=cpu)
    output_on = _async_output(scenario, version, source, cpu=cpu)
    engine = engine.model_copy(update={"version": version, "async_scheduling": async_on,
                                       "async_output_processing": output_on})  # fmt: skip
    table_name = choice.table if choice is not None else scenario.calibration
    front = resolve_costs(scenario.frontend, cal_rows, table_name)
    frontend = scenario.frontend.model_copy(
        update={name: getattr(front, name) for name in HOST_DEFAULTS}
    )
    overhead = resolve_step_overhead(scenario.cost_model, cal_meta, version)
    cost_model = scenario.cost_model.model_copy(
        update={field: getattr(overhead, term) for field, term in TERMS.items()}
    )
    resolved = scenario.model_copy(
        update={
            "engine": engine,
            "frontend": frontend,
            "cost_model": cost_model,
            "deployment": deployment,
            "hardware": _resolved_hardware(scenario, gpu),
            "router": _resolved_router(scenario),
            "calibration": table_name,  # auto: the table it picked, or roofline
        }
    )
    return ResolvedScenario(
        scenario=resolved,
        base_dir=base_dir,
        model=model,
        gpu=gpu,
        kv=kv,
        usd_per_gpu_hour=_price(scenario, gpu),
        calibration_dir=cal_dir,
        calibration_rows=cal_rows,
        pools=pools,
        draft_model=draft,
        step_overhead=overhead,
        frontend_source=front.source,
        calibration_choice=choice.record() if choice is not None else None,
    )


def _async_scheduling(scenario: Scenario, version: str, source: str, cpu: bool) -> bool:
    """`engine.async_scheduling` resolved: vLLM's default for the release, except on CPU
    (vLLM's CPU platform switches it off whatever is asked: `CpuPlatform.
    check_and_update_config`, "async scheduling is not required on CPU"; the live engine's
    resolved config says False) and where infsim does not model it (pipeline parallelism,
    where vLLM's V1 runner also turns it off, and disaggregated pools, whose KV hand-offs
    enter the scheduler directly)."""
    dep, eng = scenario.deployment, scenario.engine
    if cpu:
        if eng.async_scheduling:
            raise InputError(
                f"{source}: engine.async_scheduling: true on a CPU device; vLLM's CPU platform "
                "always runs synchronous scheduling. Set it to false or leave it null"
            )
        return False
    unmodelled = ""
    if dep.pipeline_parallel > 1:
        unmodelled = f"deployment.pipeline_parallel = {dep.pipeline_parallel}"
    elif dep.disaggregation is not None:
        unmodelled = "deployment.disaggregation"
    if eng.async_scheduling is None:
        if unmodelled:
            return False
        method = eng.speculative.method if eng.speculative is not None else None
        return default_async_scheduling(version, dep.pipeline_parallel, method)
    if eng.async_scheduling and unmodelled:
        raise InputError(
            f"{source}: engine.async_scheduling: true is not modelled with {unmodelled}; "
            "set it to false or leave it null"
        )
    return eng.async_scheduling


def _async_output(scenario: Scenario, version: str, source: str, cpu: bool) -> bool:
    """`engine.async_output_processing` resolved: vLLM V0's default for the release
    (`default_async_output_processing`); asking for it where vLLM has no such mode (V1,
    before 0.6.0) or turns it off (pipeline parallelism, speculative decoding, CPU) is an
    error rather than a silent no."""
    dep, eng = scenario.deployment, scenario.engine
    speculative = eng.speculative is not None
    if eng.async_output_processing is None:
        return not cpu and default_async_output_processing(
            version, dep.pipeline_parallel, speculative
        )
    if not eng.async_output_processing:
        return False
    why = ""
    if not has_async_output_processing(version):
        why = f"vLLM {version} has no async output processing (V0 from 0.6.0 to 0.7.x only)"
    elif cpu:
        why = "vLLM's CPU platform does not support async output processing"
    elif dep.pipeline_parallel > 1:
        why = "vLLM turns async output processing off with pipeline parallelism"
    elif speculative:
        why = "vLLM turns async output processing off with speculative decoding"
    if why:
        raise InputError(
            f"{source}: engine.async_output_processing: true, but {why}. Set it to false or "
            "leave it null"
        )
    return True


def _pools(scenario: Scenario, base_dir: Path, source: str) -> tuple:
    """Each `deployment.pools` entry resolved on its own (infsim/scenario/pools.py)."""
    from infsim.disagg.checks import check_disaggregation
    from infsim.scenario.pools import check_fleet_sections, resolve_pools

    check_disaggregation(scenario, source)
    pools = resolve_pools(scenario, base_dir, source) if scenario.deployment.pools else ()
    check_fleet_sections(scenario, pools, source)
    return pools


def _calibration(
    scenario: Scenario, base_dir: Path, gpu: GPUSpec, source: str
) -> tuple[Path | None, pd.DataFrame | None, CalibrationMeta | None, AutoChoice | None]:
    """The table's directory, rows and metadata (None: the roofline), and for
    `calibration: auto` the choice (`infsim.cost.store.pick_auto`: the built-in table
    measured on this GPU, of `engine.version` when given), told on stderr once per process
    (a warning when it fell back to the roofline or to another engine version)."""
    choice = None
    name = scenario.calibration
    if name == AUTO:
        choice = pick_auto(gpu.name, scenario.engine.version)
        tell_auto(choice, source)
        if choice.name is None:
            return None, None, None, choice
        name = choice.name
    if name == "roofline":
        return None, None, None, None
    directory = _located(lambda: resolve_calibration(name, base_dir), source, "calibration")
    rows, meta = _located(lambda: load_rows(directory), source, "calibration")
    try:
        measured_on = load_gpu(meta.device).name
    except InputError:
        measured_on = meta.device
    if measured_on != gpu.name:
        raise InputError(
            f"{source}: calibration: {meta.name} was measured on {meta.device}, but "
            f"hardware.gpu is {gpu.name}; use a calibration of that device (infsim calibrate "
            "list), calibration: auto or calibration: roofline"
        )
    return directory, rows, meta, choice


def _located(fn, source: str, path: str):
    try:
        return fn()
    except InputError as err:
        raise InputError(f"{source}: {path}: {err}") from None


def _check_tensor_parallel(model: ModelSpec, tp: int, source: str) -> None:
    heads, kv_heads = model.num_attention_heads, model.num_kv_heads
    if heads % tp:
        raise InputError(
            f"{source}: deployment.tensor_parallel: {tp} does not divide the {heads} attention "
            f"heads of {model.name}; allowed: a divisor of {heads}"
        )
    if kv_heads % tp and tp % kv_heads:
        raise InputError(
            f"{source}: deployment.tensor_parallel: {tp} neither divides nor is a multiple of "
            f"the {kv_heads} KV heads of {model.name}"
        )


def _resolved_hardware(scenario: Scenario, gpu: GPUSpec):
    hw = scenario.hardware
    return hw.model_copy(update={"gpus_per_node": hw.gpus_per_node or gpu.gpus_per_node})


def _resolved_router(scenario: Scenario):
    """The router section with the kind's option defaults filled in (from its registered
    params model)."""
    router = scenario.router
    options = router.options()
    return type(router)(kind=router.kind, **options) if options else router


def _price(scenario: Scenario, gpu: GPUSpec) -> float:
    cost = scenario.cost
    if cost.usd_per_gpu_hour is not None:
        return cost.usd_per_gpu_hour
    price = {
        "on_demand": gpu.price.on_demand_usd_per_hour,
        "spot": gpu.price.spot_usd_per_hour,
        "reserved": gpu.price.reserved_usd_per_hour,
    }[cost.pricing]
    if price is None:
        raise InputError(
            f"cost.pricing: the catalog has no {cost.pricing} price for {gpu.name}; set "
            "cost.usd_per_gpu_hour or use pricing: on_demand"
        )
    return price
