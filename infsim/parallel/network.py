"""Collective costs from α–β link models, and which link a GPU group crosses.

A link is α (latency per collective call, s) and β (bandwidth per GPU per direction,
bytes/s). For a message of `nbytes` per rank over `n` ranks the bandwidth-optimal
algorithms move, per rank (Thakur, Rabenseifner & Gropp 2005; NCCL's `busBw` factors in
nccl-tests `doc/PERFORMANCE.md`):

    all-reduce (ring)      α + 2(n−1)/n · nbytes / β
    all-gather (ring)      α +  (n−1)/n · nbytes / β     nbytes = the gathered result
    all-to-all             α +  (n−1)/n · nbytes / β     nbytes = one rank's send buffer
    send/recv (p2p)        α +            nbytes / β

A group is as slow as the slowest link it crosses: a group whose GPUs sit on more than one
node pays the inter-node link (InfiniBand/RoCE per GPU), else the intra-node one
(NVLink/NVSwitch or PCIe). Placement (`Placement`): a replica's GPUs are numbered
0..tp·pp−1, stage s holds GPUs s·tp..(s+1)·tp−1 (TP innermost, as vLLM/Megatron rank
order), and GPU g sits on node g // gpus_per_node. A replica smaller than a node is packed
inside one node.
"""

from __future__ import annotations

from dataclasses import dataclass

from infsim.catalog.hardware import LinkSpec


@dataclass(frozen=True, slots=True)
class Link:
    """α–β model of one link type as one GPU sees it."""

    kind: str
    latency_s: float
    bandwidth_bytes_per_s: float


def link_of(spec: LinkSpec, latency_s: float | None = None) -> Link:
    """A catalog link; `latency_s` overrides its α (the scenario's collective_latency_s)."""
    alpha = spec.latency_s if latency_s is None else latency_s
    return Link(spec.kind, alpha, spec.bandwidth_bytes_per_s)


def all_reduce_s(nbytes: float, num_ranks: int, link: Link) -> float:
    """Ring all-reduce of `nbytes` per rank; 0 on one rank."""
    if num_ranks <= 1:
        return 0.0
    ring_bytes = 2.0 * (num_ranks - 1) / num_ranks * nbytes
    return link.latency_s + ring_bytes / link.bandwidth_bytes_per_s


def all_gather_s(nbytes: float, num_ranks: int, link: Link) -> float:
    """Ring all-gather whose result is `nbytes` on every rank; 0 on one rank."""
    if num_ranks <= 1:
        return 0.0
    return link.latency_s + (num_ranks - 1) / num_ranks * nbytes / link.bandwidth_bytes_per_s


def all_to_all_s(nbytes: float, num_ranks: int, link: Link) -> float:
    """All-to-all where each rank holds `nbytes` and keeps 1/n of it; 0 on one rank."""
    if num_ranks <= 1:
        return 0.0
    return link.latency_s + (num_ranks - 1) / num_ranks * nbytes / link.bandwidth_bytes_per_s


def p2p_s(nbytes: float, link: Link) -> float:
    """One send/recv of `nbytes`."""
    return link.latency_s + nbytes / link.bandwidth_bytes_per_s


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one replica's tp × pp GPUs sit (see the module docstring)."""

    tensor_parallel: int
    pipeline_parallel: int
    gpus_per_node: int

    def node_of(self, gpu: int) -> int:
        return gpu // self.gpus_per_node

    def tp_group_spans_nodes(self, stage: int) -> bool:
        first = stage * self.tensor_parallel
        return self.node_of(first) != self.node_of(first + self.tensor_parallel - 1)

    def stage_boundary_spans_nodes(self, stage: int) -> bool:
        """Whether the send from `stage` to `stage + 1` leaves the node."""
        last = (stage + 1) * self.tensor_parallel - 1
        return self.node_of(last) != self.node_of(last + 1)

    @property
    def num_nodes(self) -> int:
        return self.node_of(self.tensor_parallel * self.pipeline_parallel - 1) + 1


def tp_link(placement: Placement, stage: int, intra: Link, inter: Link) -> Link:
    return inter if placement.tp_group_spans_nodes(stage) else intra


def stage_send_link(placement: Placement, stage: int, intra: Link, inter: Link) -> Link:
    return inter if placement.stage_boundary_spans_nodes(stage) else intra
