"""Build a replica's cost model from a resolved scenario (roofline or calibrated)."""

from __future__ import annotations

from infsim.catalog import precision as prec
from infsim.cost.base import CostModel
from infsim.cost.calibrated import CalibratedCostModel, Limits
from infsim.cost.lookup import CalibrationLookup, LookupLog
from infsim.cost.roofline import ReplicaShape, RooflineCostModel, RooflineParams
from infsim.kvcache.capacity import kv_heads_per_gpu
from infsim.scenario.resolve import ResolvedScenario


def replica_shape(rs: ResolvedScenario) -> ReplicaShape:
    m, gpu, dep = rs.model, rs.gpu, rs.scenario.deployment
    tp = dep.tensor_parallel
    return ReplicaShape(
        num_layers=m.num_layers,
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
        link_bandwidth_bytes_per_s=gpu.intra_node_link.bandwidth_bytes_per_s,
    )


def build_cost_model(rs: ResolvedScenario, log: LookupLog | None = None) -> CostModel:
    """The scenario's cost model; `log` (if given) collects how each lookup was answered."""
    shape = replica_shape(rs)
    params = RooflineParams(**rs.scenario.cost_model.model_dump(exclude={"kind"}))
    if rs.calibration_rows is None:
        return RooflineCostModel(shape, params)
    e, dep = rs.scenario.engine, rs.scenario.deployment
    limits = Limits(e.max_num_batched_tokens, e.max_num_seqs, e.max_model_len)
    lookup = CalibrationLookup(rs.calibration_rows, log, dep.tensor_parallel)
    return CalibratedCostModel(
        shape, lookup, params, limits, dep.weight_precision, dep.kv_cache_precision
    )
