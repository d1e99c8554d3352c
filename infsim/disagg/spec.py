"""`deployment.disaggregation`: prefill/decode disaggregation (xPyD), frozen pydantic.

    deployment:
      pools:
        - {name: prefill, role: prefill, replicas: 3}
        - {name: decode, role: decode, replicas: 1}
      disaggregation:
        link: inter_node            # or intra_node, or {bandwidth_bytes_per_s, latency_s}
        num_streams: 1              # concurrent transfers per sending (prefill) replica
        layer_pipelined: false      # transfer overlaps the prefill's layers
        conditional: {max_local_prefill_tokens: 512, local_if_cached_fraction: 0.5}

Semantics and defaults: docs/disaggregation.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from infsim.limits import BoundedModel, limit

FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LinkParamsSpec(BoundedModel):
    """An explicit α–β link, as the hardware catalog's links: per GPU, per direction."""

    model_config = FROZEN
    bandwidth_bytes_per_s: float = Field(
        gt=0, le=limit("bytes"), description="Bandwidth per GPU per direction (bytes/s)."
    )
    latency_s: float = Field(ge=0, description="Latency of one transfer (s).")


class ConditionalSpec(BoundedModel):
    """Conditional disaggregation (Dynamo's disagg router, vLLM's conditional P/D): a
    prompt whose uncached part is short, or that is mostly cached on the decode side,
    is prefilled locally by the decode replica instead of a prefill replica."""

    model_config = FROZEN
    max_local_prefill_tokens: int | None = Field(
        None,
        ge=0,
        description="Prefill locally when the prompt's tokens not cached on the decode "
        "replica are at most this many (Dynamo max_local_prefill_length); null = never "
        "on length alone.",
    )
    local_if_cached_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Prefill locally when at least this fraction of the prompt is in the "
        "decode replica's prefix cache; null = never on cache hits alone.",
    )


class DisaggregationSpec(BoundedModel):
    """Prefill pools run prompts (max_tokens=1), their KV moves to a decode pool."""

    model_config = FROZEN
    link: Literal["inter_node", "intra_node"] | LinkParamsSpec = Field(
        "inter_node",
        description="The link the KV crosses: the prefill GPU's catalog inter_node_link "
        "(InfiniBand/RoCE: prefill and decode on different nodes, the usual xPyD layout) "
        "or intra_node_link (NVLink: same node), or explicit bandwidth_bytes_per_s + "
        "latency_s. Bandwidth is per GPU: a transfer uses min(prefill TP, decode TP) of "
        "them in parallel.",
    )
    num_streams: int = Field(
        1,
        ge=1,
        description="Transfers a prefill replica sends at once; each gets 1/num_streams "
        "of the bandwidth (1 = FIFO, one at a time at full bandwidth).",
    )
    layer_pipelined: bool = Field(
        False,
        description="Send each layer's KV as the prefill finishes it (Splitwise, Mooncake "
        "layer-wise): only max(full transfer − prefill span, one layer's share) + latency "
        "is exposed after the prefill; false = the whole KV after the prefill (vLLM "
        "NixlConnector).",
    )
    conditional: ConditionalSpec | None = Field(
        None, description="Prefill short or cache-hit prompts locally; null = never."
    )
