"""Build a replica's cost model from its `ReplicaConfig` (roofline or calibrated)."""

from __future__ import annotations

from infsim.catalog import precision as prec
from infsim.catalog.hardware import GPUSpec
from infsim.cost import coverage, perturb
from infsim.cost.base import CostModel
from infsim.cost.calibrated import CalibratedCostModel, Limits
from infsim.cost.config import ReplicaConfig
from infsim.cost.lookup import CalibrationLookup, LookupLog
from infsim.cost.pipeline import PipelineCost
from infsim.cost.roofline import (
    PrefillScaledRoofline,
    ReplicaShape,
    RooflineCostModel,
    RooflineParams,
)
from infsim.errors import InputError
from infsim.kvcache.capacity import kv_heads_per_gpu
from infsim.parallel.network import Placement, link_of, stage_send_link
from infsim.parallel.pipeline import stage_layer_counts


def placement(cfg: ReplicaConfig) -> Placement:
    return Placement(cfg.tensor_parallel, cfg.pipeline_parallel, cfg.gpus_per_node)


def replica_shape(
    cfg: ReplicaConfig, stage: int = 0, num_layers: int | None = None
) -> ReplicaShape:
    """Per-GPU shape of pipeline stage `stage` (the whole model when PP = 1). A TP group
    that spans nodes uses the inter-node link, with that link's catalog latency as α."""
    m, gpu = cfg.model, cfg.gpu
    tp = cfg.tensor_parallel
    link, link_latency_s = gpu.intra_node_link, None
    if placement(cfg).tp_group_spans_nodes(stage):
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
        weight_bytes_per_param=prec.bytes_per_element(cfg.weight_precision),
        kv_bytes_per_element=prec.bytes_per_element(cfg.kv_cache_precision),
        gemm_flops_per_s=gpu.flops_per_s(cfg.weight_precision),
        attention_flops_per_s=gpu.flops_per_s("bfloat16"),
        mem_bandwidth_bytes_per_s=gpu.mem_bandwidth_bytes_per_s,
        link_bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
        link_latency_s=link_latency_s,
        expert_parallel=cfg.expert_parallel,
    )


def build_cost_model(cfg: ReplicaConfig, log: LookupLog | None = None) -> CostModel:
    """The replica's cost model; `log` (if given) collects how each lookup was answered."""
    return _cost_model(cfg, replica_shape(cfg), log)


def build_pipeline_cost(cfg: ReplicaConfig) -> PipelineCost:
    """Per-stage cost models (stage layer counts as vLLM splits them) and the links
    between stages; stages with the same layers and link share one model."""
    place = placement(cfg)
    layers = stage_layer_counts(cfg.model.num_layers, place.pipeline_parallel)
    shapes = [replica_shape(cfg, s, n) for s, n in enumerate(layers)]
    models: dict[ReplicaShape, CostModel] = {}
    stage_models = [models.get(sh) or models.setdefault(sh, _cost_model(cfg, sh)) for sh in shapes]
    intra = link_of(cfg.gpu.intra_node_link, cfg.collective_latency_s)
    inter = link_of(cfg.gpu.inter_node_link)
    sends = [stage_send_link(place, s, intra, inter) for s in range(len(layers) - 1)]
    return PipelineCost(stage_models, sends, cfg.model.hidden_size)


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


def roofline_params(cfg: ReplicaConfig) -> RooflineParams:
    """Roofline efficiencies and the step overhead, its per-worker term folded into the
    fixed one for the replica's tensor × pipeline ranks."""
    overhead = cfg.step_overhead
    return RooflineParams(
        compute_efficiency=cfg.compute_efficiency,
        memory_efficiency=cfg.memory_efficiency,
        step_overhead_s=overhead.step_s(0, cfg.num_workers),
        per_seq_overhead_s=overhead.per_seq_s,
        collective_latency_s=cfg.collective_latency_s,
    )


def _cost_model(cfg: ReplicaConfig, shape: ReplicaShape, log: LookupLog | None = None):
    params = roofline_params(cfg)
    multipliers = perturb.active()  # cost-model uncertainty draws; None in a plain run
    if cfg.calibration_rows is None:
        split = multipliers is not None and multipliers.prefill != 1.0
        model = (PrefillScaledRoofline if split else RooflineCostModel)(shape, params, multipliers)
        coverage.register("roofline", model, cfg.calibration_choice)
        return model
    # LM-head rows: one per sampling request, plus one per speculative draft verified.
    drafts = cfg.speculative.num_speculative_tokens if cfg.speculative else 0
    limits = Limits(cfg.max_num_batched_tokens, cfg.max_num_seqs * (1 + drafts),
                    cfg.max_model_len, cfg.cuda_graph_max_tokens,
                    cfg.prefill_in_cuda_graph)  # fmt: skip
    lookup = CalibrationLookup(
        cfg.calibration_rows, log, cfg.tensor_parallel, dtype_substitutes(cfg.gpu)
    )
    overhead = cfg.step_overhead
    model = CalibratedCostModel(
        shape,
        lookup,
        params,
        limits,
        cfg.weight_precision,
        cfg.kv_cache_precision,
        overhead_source=overhead.source,
        rows_override=not overhead.explicit,
    )
    if multipliers is not None:
        model.scale(multipliers)
    coverage.register(cfg.calibration_name, model, cfg.calibration_choice)
    return model
