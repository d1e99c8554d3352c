"""α–β collective formulas, placement over nodes, and how the cost models use them."""

from __future__ import annotations

import pytest

from infsim.core.batch import batch_of
from infsim.cost.factory import build_cost_model, build_pipeline_cost
from infsim.parallel.network import (
    Link,
    Placement,
    all_gather_s,
    all_reduce_s,
    all_to_all_s,
    p2p_s,
)

LINK = Link("test", latency_s=1e-5, bandwidth_bytes_per_s=1e11)


def test_alpha_beta_formulas_exact() -> None:
    # 1 MB per rank over 4 ranks, α = 10 µs, β = 100 GB/s.
    assert all_reduce_s(1e6, 4, LINK) == pytest.approx(1e-5 + 2 * 3 / 4 * 1e6 / 1e11, rel=1e-15)
    assert all_reduce_s(1e6, 4, LINK) == pytest.approx(2.5e-5)
    assert all_gather_s(1e6, 4, LINK) == pytest.approx(1e-5 + 0.75e-5)
    assert all_to_all_s(1e6, 4, LINK) == pytest.approx(1e-5 + 0.75e-5)
    assert p2p_s(1e6, LINK) == pytest.approx(2e-5)
    # One rank: no communication at all (not even α).
    assert all_reduce_s(1e6, 1, LINK) == all_to_all_s(1e6, 1, LINK) == 0.0


def test_placement_node_spans() -> None:
    # TP8 on 8-GPU nodes stays inside a node; TP16 does not.
    assert not Placement(8, 1, 8).tp_group_spans_nodes(0)
    assert Placement(16, 1, 8).tp_group_spans_nodes(0)
    # TP4×PP2 on one 8-GPU node: the stage boundary (GPU 3 → 4) is NVLink.
    tp4pp2 = Placement(4, 2, 8)
    assert not tp4pp2.stage_boundary_spans_nodes(0)
    assert tp4pp2.num_nodes == 1
    # TP8×PP2: stage 1 lives on the second node, the boundary is InfiniBand.
    tp8pp2 = Placement(8, 2, 8)
    assert tp8pp2.stage_boundary_spans_nodes(0)
    assert not tp8pp2.tp_group_spans_nodes(1)
    assert tp8pp2.num_nodes == 2
    # 4-GPU nodes: TP8 spans two nodes.
    assert Placement(8, 1, 4).tp_group_spans_nodes(0)


def test_tp_all_reduce_within_node_is_unchanged(resolved) -> None:
    # PP = 1 inside a node: α is the scenario's collective_latency_s (1e-5), β NVLink4.
    cm = build_cost_model(resolved(deployment={"tensor_parallel": 4}).replica())
    tokens, hidden, layers = 512, 8192, 80
    nbytes = tokens * hidden * 2
    expected = 2 * layers * (1e-5 + 2.0 * 3 / 4 * nbytes / 450e9)
    assert cm.op_times_s(batch_of([(tokens, 0)]))["all_reduce"] == expected


def test_tp_group_spanning_nodes_uses_inter_node_link(resolved) -> None:
    # TP8 with 4 GPUs per node: the ring crosses InfiniBand NDR (50 GB/s, 20 µs).
    rs = resolved(deployment={"tensor_parallel": 8}, hardware={"gpus_per_node": 4})
    assert rs.scenario.hardware.gpus_per_node == 4
    cm = build_cost_model(rs.replica())
    tokens, hidden, layers = 256, 8192, 80
    nbytes = tokens * hidden * 2
    expected = 2 * layers * (20e-6 + 2.0 * 7 / 8 * nbytes / 50e9)
    assert cm.op_times_s(batch_of([(tokens, 0)]))["all_reduce"] == pytest.approx(expected)
    same_node = build_cost_model(resolved(deployment={"tensor_parallel": 8}).replica())
    slow = cm.op_times_s(batch_of([(tokens, 0)]))["all_reduce"]
    assert slow > 5 * same_node.op_times_s(batch_of([(tokens, 0)]))["all_reduce"]


def test_expert_parallel_all_to_all_bytes(resolved) -> None:
    # Mixtral-8x7B (hidden 4096, top-2, 32 layers), TP4 with EP4 on NVLink4 (α from the
    # scenario, 10 µs). T tokens: each rank owns T/4, sends T/4·2·4096·2 B per all-to-all,
    # 3/4 of which leaves it; dispatch + combine per layer; all-gather of T·4096·2 B to
    # re-replicate; no all-reduce inside an expert (TP/EP = 1).
    cm = build_cost_model(
        resolved("mixtral-8x7b", deployment={"tensor_parallel": 4, "expert_parallel": 4}).replica()
    )
    t, h, k, layers, ep, beta, alpha = 1024, 4096, 2, 32, 4, 450e9, 1e-5
    send = t * k * h * 2 / ep
    ops = cm.op_times_s(batch_of([(t, 0)]))
    assert ops["all_to_all"] == pytest.approx(layers * 2 * (alpha + 3 / 4 * send / beta))
    assert ops["all_gather"] == pytest.approx(layers * (alpha + 3 / 4 * t * h * 2 / beta))
    assert ops["all_reduce"] == pytest.approx(layers * (alpha + 2 * 3 / 4 * t * h * 2 / beta))
    tp_only_rs = resolved("mixtral-8x7b", deployment={"tensor_parallel": 4})
    tp_only = build_cost_model(tp_only_rs.replica())
    base = tp_only.op_times_s(batch_of([(t, 0)]))
    assert "all_to_all" not in base
    # Same expert FLOPs and bytes per GPU under balanced routing: only traffic differs.
    assert ops["mlp"] == base["mlp"]


def test_pipeline_stage_times_split_layers_and_sends(resolved) -> None:
    # Llama-3.1-70B TP4×PP2 on one node: 40 + 40 layers; stage 0 carries the step
    # overhead, stage 1 the LM head; the send is T·8192·2 bytes over NVLink.
    rs = resolved(deployment={"tensor_parallel": 4, "pipeline_parallel": 2})
    pipe = build_pipeline_cost(rs.replica())
    whole = build_cost_model(resolved(deployment={"tensor_parallel": 4}).replica())
    batch = batch_of([(256, 0), (1, 300)])
    ops = whole.op_times_s(batch)
    head, overhead = ops["lm_head"], ops["overhead"]
    body = sum(ops.values()) - head - overhead
    s0, s1 = pipe.stage_times_s(batch)
    assert s0 == pytest.approx(body / 2 + overhead)
    assert s1 == pytest.approx(body / 2 + head)
    (send,) = pipe.send_times_s(batch)
    assert send == pytest.approx(1e-5 + 257 * 8192 * 2 / 450e9)
