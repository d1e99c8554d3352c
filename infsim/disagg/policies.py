"""Pure policies of disaggregation: the link, the transfer time, the conditional
decision and decode placement. No simpy; time and loads enter as arguments."""

from __future__ import annotations

from infsim.catalog.hardware import GPUSpec
from infsim.disagg.spec import ConditionalSpec, DisaggregationSpec, LinkParamsSpec
from infsim.parallel.network import Link, link_of, p2p_s


def transfer_link(
    spec: DisaggregationSpec, prefill_gpu: GPUSpec, prefill_tp: int, decode_tp: int
) -> Link:
    """The link one KV transfer crosses, bandwidth aggregated over the GPU pairs.

    With TP the KV heads are sharded: each of the prefill replica's GPUs holds 1/tp of
    every token's KV and sends it over its own NIC (one NIC per GPU on HGX nodes), so
    min(prefill TP, decode TP) links run in parallel (the narrower side bounds it).
    """
    if isinstance(spec.link, LinkParamsSpec):
        base = Link("explicit", spec.link.latency_s, spec.link.bandwidth_bytes_per_s)
    elif spec.link == "intra_node":
        base = link_of(prefill_gpu.intra_node_link)
    else:
        base = link_of(prefill_gpu.inter_node_link)
    lanes = max(1, min(prefill_tp, decode_tp))
    return Link(base.kind, base.latency_s, base.bandwidth_bytes_per_s * lanes)


def transfer_time_s(
    nbytes: float,
    link: Link,
    *,
    num_streams: int = 1,
    num_layers: int = 1,
    layer_pipelined: bool = False,
    prefill_span_s: float = 0.0,
) -> float:
    """Time the link is busy with one transfer after the prefill ends (exposed time).

    Whole KV after the prefill: latency + nbytes / (bandwidth / num_streams) (α–β p2p).
    Layer-pipelined: layer i is sent while layers i+1.. compute, so what remains after
    the prefill is the larger of the part that could not overlap (full time − prefill
    span) and the last layer's share, plus the latency.
    """
    stream = Link(link.kind, link.latency_s, link.bandwidth_bytes_per_s / num_streams)
    if not layer_pipelined:
        return p2p_s(nbytes, stream)
    full_s = nbytes / stream.bandwidth_bytes_per_s
    last_layer_s = full_s / max(1, num_layers)
    return stream.latency_s + max(full_s - prefill_span_s, last_layer_s)


def prefill_locally(
    num_prompt_tokens: int, num_cached_tokens: int, conditional: ConditionalSpec | None
) -> bool:
    """Conditional disaggregation: prefill on the decode replica when the uncached part
    of the prompt is short, or when most of it is cached there."""
    if conditional is None:
        return False
    limit = conditional.max_local_prefill_tokens
    if limit is not None and num_prompt_tokens - num_cached_tokens <= limit:
        return True
    fraction = conditional.local_if_cached_fraction
    return fraction is not None and num_cached_tokens >= fraction * num_prompt_tokens


def least_loaded(loads: list[float]) -> int:
    """Index of the smallest load; ties go to the lowest index (determinism)."""
    return min(range(len(loads)), key=loads.__getitem__)
