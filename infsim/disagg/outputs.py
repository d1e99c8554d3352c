"""Disaggregation outputs: per-request columns, the summary's `disaggregation` section and
the transfer timeline (`disaggregation_timeline.parquet`).

Per request (requests.parquet, null where it does not apply): prefill_mode (remote:
prefill pool → decode pool; local: prefilled by the decode replica, conditional; mixed:
served whole by a mixed replica), prefill/decode replica ids, prefill_end_s (the prefill
sampled the first token), decode_wait_s (prefill end → decode blocks allocated),
transfer_queue_s (blocks allocated → the sender's link free), transfer_s (on the link),
kv_transfer_bytes. TTFT = transfer end − arrival for remote requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from infsim import arrays
from infsim.metrics.percentiles import describe
from infsim.metrics.summary import status_is

if TYPE_CHECKING:
    from infsim.disagg.records import DisaggRun, Handoff

TIMELINE_SCHEMA = pa.schema(
    [
        ("time_s", pa.float64()),
        ("num_transfers_queued", pa.int32()),  # decode blocks held, sender's link busy
        ("num_transferring", pa.int32()),
        ("num_awaiting_decode_blocks", pa.int32()),  # prefilled, decode has no room yet
        ("num_prefill_held", pa.int32()),  # prefill replicas' finished, unsent KV
    ]
)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


_REQUEST_FIELDS: dict[str, tuple[Callable[[Handoff], Any], pa.DataType]] = {
    "prefill_mode": (lambda h: h.mode, pa.string()),
    "prefill_replica_id": (lambda h: h.prefill_replica_id, pa.int32()),
    "decode_replica_id": (lambda h: h.decode_replica_id, pa.int32()),
    "prefill_end_s": (lambda h: h.prefill_end_s, pa.float64()),
    "decode_wait_s": (lambda h: _diff(h.reserved_s, h.prefill_end_s), pa.float64()),
    "transfer_start_s": (lambda h: h.transfer_start_s, pa.float64()),
    "transfer_end_s": (lambda h: h.transfer_end_s, pa.float64()),
    "transfer_queue_s": (lambda h: _diff(h.transfer_start_s, h.reserved_s), pa.float64()),
    "transfer_s": (lambda h: _diff(h.transfer_end_s, h.transfer_start_s), pa.float64()),
    "kv_transfer_bytes": (lambda h: h.kv_bytes, pa.float64()),
}
"""Per added requests-table column: its value from a request's handoff, and its type."""

REQUEST_COLUMNS = list(_REQUEST_FIELDS)
"""The columns `request_columns` adds, in order."""


def request_columns(run: DisaggRun, indices: Sequence[int]) -> dict[str, pa.Array]:
    """Per request (trace `indices` in table order): its path through the deployment."""
    hands: list[Handoff | None] = [run.handoffs.get(i) for i in indices]
    return {
        name: (arrays.strings if kind == pa.string() else arrays.nullable)(
            [None if h is None else fn(h) for h in hands], kind
        )
        for name, (fn, kind) in _REQUEST_FIELDS.items()
    }


def timeline_table(run: DisaggRun) -> pa.Table:
    return arrays.from_rows(run.timeline, TIMELINE_SCHEMA)


def _values(table: pa.Table, name: str) -> np.ndarray:
    values = np.asarray(arrays.to_numpy(table.column(name)), dtype=np.float64)
    return values[~np.isnan(values)]


def pool_utilisation(run: DisaggRun, steps: pa.Table, end_s: float) -> dict[str, dict]:
    """Per pool: replicas, role and busy fraction (engine-step time / replica time)."""
    ids = arrays.to_numpy(steps.column("replica_id"))
    busy = arrays.to_numpy(steps.column("end_s")) - arrays.to_numpy(steps.column("start_s"))
    per_replica = np.bincount(ids, weights=busy, minlength=max(run.roles, default=0) + 1)
    out: dict[str, dict] = {}
    for rid, pool in sorted(run.pool_of.items()):
        entry = out.setdefault(pool, {"role": run.roles[rid], "replicas": 0, "busy_s": 0.0})
        entry["replicas"] += 1
        entry["busy_s"] += float(per_replica[rid])
    for entry in out.values():
        span = entry["replicas"] * end_s
        entry["busy_fraction"] = entry["busy_s"] / span if span > 0 else None
    return out


def disaggregation_section(
    run: DisaggRun, table: pa.Table, steps: pa.Table, end_s: float
) -> dict[str, Any]:
    modes = arrays.to_numpy(table.column("prefill_mode"))
    done = status_is(table, "finished")
    moved = _values(table, "kv_transfer_bytes")
    spec = run.spec
    timeline = run.timeline
    return {
        "num_transferred": int(moved.size),
        "num_prefilled_locally": int(np.sum(modes == "local")),
        "num_mixed": int(np.sum(modes == "mixed")),
        "num_remote_prefill": int(np.sum(modes == "remote")),
        "num_remote_completed": int(np.sum((modes == "remote") & done)),
        "kv_bytes_transferred": float(moved.sum()),
        "transfer_s": describe(_values(table, "transfer_s")),
        "transfer_queue_s": describe(_values(table, "transfer_queue_s")),
        "decode_wait_s": describe(_values(table, "decode_wait_s")),
        "max_transfers_queued": max(r[1] for r in timeline),
        "max_awaiting_decode_blocks": max(r[3] for r in timeline),
        "link": {
            name: {
                "kind": link.kind,
                "bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
                "latency_s": link.latency_s,
            }
            for name, link in run.links.items()
        },
        "num_streams": spec.num_streams,
        "layer_pipelined": spec.layer_pipelined,
        "conditional": spec.conditional.model_dump() if spec.conditional else None,
        "pools": pool_utilisation(run, steps, end_s),
    }
