"""Build a replica's cost model from a resolved scenario (roofline or calibrated)."""

from __future__ import annotations

from infsim.catalog import precision as prec
from infsim.catalog.hardware import GPUSpec
from infsim.cost import coverage
from infsim.cost.base import CostModel
from infsim.cost.calibrated import CalibratedCostModel, Limits
from infsim.cost.lookup import CalibrationLookup, LookupLog
from infsim.cost.pipeline import PipelineCost
from infsim.cost.roofline import ReplicaShape, RooflineCostModel, RooflineParams
from infsim.errors import InputError
from infsim.kvcache.capacity import kv_heads_per_gpu
from infsim.parallel.network import Placement, link_of, stage_send_link
from infsim.parallel.pipeline import stage_layer_counts
from infsim.scenario.host_overhead import HostOverhead, resolve_step_overhead
from infsim.scenario.resolve import ResolvedScenario
from infsim.scenario.vllm_defaults import NEWEST_VLLM


def placement(rs: ResolvedScenario) -> Placement:
    dep = rs.scenario.deployment
    per_node = rs.scenario.hardware.gpus_per_node or rs.gpu.gpus_per_node
    return Placement(dep.tensor_parallel, dep.pipeline_parallel, per_node)


def replica_shape(
    rs: ResolvedScenario, stage: int = 0, num_layers: int | None = None
) -> ReplicaShape:
    """Per-GPU shape of pipeline stage `stage` (the whole model when PP = 1). A TP group
    that spans nodes uses the inter-node link, with that link's catalog latency as α."""
    m, gpu, dep = rs.model, rs.gpu, rs.scenario.deployment
    tp = dep.tensor_parallel
    link, link_latency_s = gpu.intra_node_link, None
    if placement(rs).tp_group_spans_nodes(stage):
        link, link_latency_s = gpu.inter_node_link, gpu.inter_node_link.latency_s
    return ReplicaShape(
        num_layers=m.num_layers if num_layers is None else num_layers,
        hidden_size=m.hidden_size,
        intermediate_size=m.intermediate_size,
        num_heads_per_gpu=m.num_attention_heads / tp,
        num_kv_heads_per_gpu=kv_heads_per_gpu(m, tp),
        head_dim=m.head_dim,
        vocab_size=m.vocab_size,
        num_experts=m.num_experts,
        num_experts_per_tok=m.num_experts_per_tok,
        moe_intermediate_size=m.moe_intermediate_size,
        tensor_parallel=tp,
        weight_bytes_per_param=prec.bytes_per_element(dep.weight_precision),
        kv_bytes_per_element=prec.bytes_per_element(dep.kv_cache_precision),
        gemm_flops_per_s=gpu.flops_per_s(dep.weight_precision),
        attention_flops_per_s=gpu.flops_per_s("bfloat16"),
        mem_bandwidth_bytes_per_s=gpu.mem_bandwidth_bytes_per_s,
        link_bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
        link_latency_s=link_latency_s,
        expert_parallel=dep.expert_parallel,
    )


def build_cost_model(rs: ResolvedScenario, log: LookupLog | None = None) -> CostModel:
    """The scenario's cost model; `log` (if given) collects how each lookup was answered."""
    return _cost_model(rs, replica_shape(rs), log)


def build_pipeline_cost(rs: ResolvedScenario) -> PipelineCost:
    """Per-stage cost models (stage layer counts as vLLM splits them) and the links
    between stages; stages with the same layers and link share one model."""
    place = placement(rs)
    layers = stage_layer_counts(rs.model.num_layers, place.pipeline_parallel)
    shapes = [replica_shape(rs, s, n) for s, n in enumerate(layers)]
    models: dict[ReplicaShape, CostModel] = {}
    stage_models = [models.get(sh) or models.setdefault(sh, _cost_model(rs, sh)) for sh in shapes]
    collective_s = rs.scenario.cost_model.collective_latency_s
    intra = link_of(rs.gpu.intra_node_link, collective_s)
    inter = link_of(rs.gpu.inter_node_link)
    sends = [stage_send_link(place, s, intra, inter) for s in range(len(layers) - 1)]
    return PipelineCost(stage_models, sends, rs.model.hidden_size)


def dtype_substitutes(gpu: GPUSpec) -> dict[str, str]:
    """float16 ↔ bfloat16 where the GPU's peak FLOP/s of the two are equal (H100, H200,
    A100, the RTX cards…): same bytes, same rate, so one's measured rows price the other.
    Where they differ (or the catalog lacks one), no substitution: such lookups fall back
    to the roofline, with a warning."""
    try:
        equal = gpu.flops_per_s("float16") == gpu.flops_per_s("bfloat16")
    except InputError:
        return {}
    return {"float16": "bfloat16", "bfloat16": "float16"} if equal else {}


def calibration_name(rs: ResolvedScenario) -> str:
    """The calibration table's name (its directory), or "roofline"."""
    return rs.calibration_dir.name if rs.calibration_dir is not None else "roofline"


def host_overhead(rs: ResolvedScenario) -> HostOverhead:
    """The replica's resolved host step overhead (`resolve` fills it; a hand-built
    `ResolvedScenario` gets the default for its engine release)."""
    if rs.step_overhead is not None:
        return rs.step_overhead
    version = rs.scenario.engine.version or NEWEST_VLLM
    return resolve_step_overhead(rs.scenario.cost_model, None, version)


def roofline_params(rs: ResolvedScenario) -> RooflineParams:
    """Roofline efficiencies and the step overhead, its per-worker term folded into the
    fixed one for the replica's tensor × pipeline ranks."""
    cm, dep = rs.scenario.cost_model, rs.scenario.deployment
    overhead = host_overhead(rs)
    workers = dep.tensor_parallel * dep.pipeline_parallel
    return RooflineParams(
        compute_efficiency=cm.compute_efficiency,
        memory_efficiency=cm.memory_efficiency,
        step_overhead_s=overhead.step_s(0, workers),
        per_seq_overhead_s=overhead.per_seq_s,
        collective_latency_s=cm.collective_latency_s,
    )


def _cost_model(rs: ResolvedScenario, shape: ReplicaShape, log: LookupLog | None = None):
    params = roofline_params(rs)
    if rs.calibration_rows is None:
        model = RooflineCostModel(shape, params)
        coverage.register("roofline", model)
        return model
    e, dep = rs.scenario.engine, rs.scenario.deployment
    # LM-head rows: one per sampling request, plus one per speculative draft verified.
    drafts = e.speculative.num_speculative_tokens if e.speculative else 0
    limits = Limits(e.max_num_batched_tokens, e.max_num_seqs * (1 + drafts), e.max_model_len)
    lookup = CalibrationLookup(
        rs.calibration_rows, log, dep.tensor_parallel, dtype_substitutes(rs.gpu)
    )
    overhead = host_overhead(rs)
    model = CalibratedCostModel(
        shape,
        lookup,
        params,
        limits,
        dep.weight_precision,
        dep.kv_cache_precision,
        overhead_source=overhead.source,
        rows_override=not overhead.explicit,
    )
    coverage.register(calibration_name(rs), model)
    return model
