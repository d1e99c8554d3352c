"""The summary's fleet outputs: `fleet`, `failures`, and the billed `cost` (extended).

Billing: every replica is billed from its request (t = 0 for initial replicas) to its
release or loss, clipped to the run's span [0, end_s] (end_s = last completion, as the
rest of the summary), at its pool's $/GPU-hour × GPUs per replica; idle warm capacity,
cold starts and draining included. Replicas with the same interval are billed together
(count × GPUs × duration), so a fixed fleet's bill is exactly num_gpus × span × price,
the figure of a run without pools.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from infsim import arrays
from infsim.fleet.lifecycle import BILLED, STATE_NAMES, State
from infsim.metrics.percentiles import describe
from infsim.metrics.summary import SLOSpec, slo_met, status_is

if TYPE_CHECKING:
    from infsim.sim.fleet_records import FleetRecord, Member, PoolRuntime

MAX_LISTED_EVENTS = 1000
PHASES = ("provisioning_s", "weight_load_s", "engine_start_s", "graph_capture_s")


def billed_interval(member: Member, end_s: float) -> tuple[float, float]:
    start = max(member.history[0][0], 0.0)
    stop = next((t for t, s in member.history if s not in BILLED), end_s)
    return start, max(start, min(stop, end_s))


def pool_gpu_seconds(pool: PoolRuntime, end_s: float) -> float:
    groups = Counter(billed_interval(m, end_s) for m in pool.members)
    gpus = pool.pool.gpus_per_replica
    return math.fsum(count * gpus * (b - a) for (a, b), count in sorted(groups.items()))


def state_seconds(pool: PoolRuntime, end_s: float) -> dict[str, float]:
    out = dict.fromkeys(STATE_NAMES[: State.RELEASED], 0.0)
    for m in pool.members:
        for (t0, state), (t1, _) in zip(m.history, [*m.history[1:], (end_s, None)], strict=True):
            if state in BILLED:
                out[STATE_NAMES[state]] += max(0.0, min(t1, end_s) - min(t0, end_s))
    return out


def _peak_live(pool_name: str, timeline: pa.Table) -> int:
    rows = arrays.equals_string(timeline.column("pool"), pool_name)
    if not rows.any():
        return 0
    live = sum(
        np.asarray(arrays.to_numpy(timeline.column(f"num_{s}")), dtype=np.int64)[rows]
        for s in ("provisioning", "loading", "starting", "serving")
    )
    return int(live.max())


def fleet_section(record: FleetRecord, end_s: float) -> dict[str, Any]:
    pools = {}
    for pool in record.pools:
        spec, resolved = pool.pool.spec, pool.pool
        colds = [m.cold_start for m in pool.members if m.cold_start is not None]
        ups = sum(1 for e in pool.scale_events if e["to"] > e["from"])
        gpu_s = pool_gpu_seconds(pool, end_s)
        pools[pool.name] = {
            "gpu": resolved.gpu.name,
            "gpus_per_replica": pool.pool.gpus_per_replica,
            "pricing": spec.pricing.kind,
            "usd_per_gpu_hour": pool.pool.usd_per_gpu_hour,
            "replicas_initial": spec.replicas,
            "min_replicas": spec.min_count,
            "max_replicas": spec.max_count,
            "autoscaled": pool.autoscaler is not None,
            "replicas_peak": _peak_live(pool.name, record.timeline),
            "kv_cache_blocks_per_replica": resolved.kv.num_blocks,
            "max_num_seqs": resolved.engine.max_num_seqs,
            "replica_seconds": state_seconds(pool, end_s),
            "gpu_hours": gpu_s / 3600.0,
            "num_scale_ups": ups,
            "num_scale_downs": len(pool.scale_events) - ups,
            "scale_events": pool.scale_events[:MAX_LISTED_EVENTS],
            "cold_starts": {
                "count": len(colds),
                "total_s": describe(np.asarray([c.total_s for c in colds])),
                "mean_phases_s": {
                    phase: float(np.mean([getattr(c, phase) for c in colds])) if colds else None
                    for phase in PHASES
                },
            },
        }
    return {
        "pools": pools,
        "gateway": {
            "num_queued": record.num_gateway_queued,
            "max_queued": record.max_gateway_queued,
        },
    }


def _p99(values: np.ndarray) -> float | None:
    return float(np.percentile(values, 99)) if values.size else None


def failures_section(
    record: FleetRecord, indices: Sequence[int], table: pa.Table
) -> dict[str, Any]:
    spec = record.failures
    events = record.failure_events
    lost = [e for e in events if e["event"].startswith("lost")]
    failed_ids = {r.index for r in record.failed}
    retried = np.asarray([i in record.num_losses and i not in failed_ids for i in indices], bool)
    done = status_is(table, "finished")
    latency = {}
    for metric in ("ttft_s", "e2e_s"):
        values = arrays.to_numpy(table.column(metric)).astype(np.float64)
        latency[metric.removesuffix("_s") + "_p99"] = {
            "all": _p99(values[done]),
            "unaffected": _p99(values[done & ~retried]),
            "retried": _p99(values[done & retried]),
        }
    return {
        "policy": spec.policy if spec else None,
        "num_failures": sum(1 for e in lost if e["kind"] == "failure"),
        "num_preemptions": sum(1 for e in lost if e["kind"] == "preemption"),
        "num_preemption_notices": sum(1 for e in events if e["event"] == "notice"),
        "requests_retried": int(retried.sum()),
        # Every loss of a request is a retry except the one that failed it.
        "num_retries": sum(record.num_losses.values()) - len(record.failed),
        "requests_failed": len(record.failed),
        "latency_s": latency,
        "events": events[:MAX_LISTED_EVENTS],
    }


def cost_section(
    cost: dict[str, Any],
    record: FleetRecord,
    *,
    table: pa.Table,
    slo: SLOSpec,
    end_s: float,
    static: bool,
) -> dict[str, Any]:
    """The summary's `cost`, billed per pool; existing keys keep their meaning. For a
    fixed single-pool fleet the existing figures are kept as computed (they are equal)."""
    by_pool = {}
    usd_total = gpu_hours = 0.0
    for pool in record.pools:
        hours = pool_gpu_seconds(pool, end_s) / 3600.0
        usd = hours * pool.pool.usd_per_gpu_hour
        by_pool[pool.name] = {
            "pricing": pool.pool.spec.pricing.kind,
            "usd_per_gpu_hour": pool.pool.usd_per_gpu_hour,
            "gpu_hours": hours,
            "usd_total": usd,
        }
        usd_total += usd
        gpu_hours += hours
    for entry in by_pool.values():
        entry["share"] = entry["usd_total"] / usd_total if usd_total else None
    out = dict(cost)
    done = status_is(table, "finished")
    n_done = int(done.sum())
    if not static:
        out_tokens = float(arrays.to_numpy(table.column("num_output_tokens"))[done].sum())
        in_tokens = float(arrays.to_numpy(table.column("num_prompt_tokens"))[done].sum())

        def per_million(tokens: float) -> float | None:
            return usd_total / (tokens / 1e6) if tokens > 0 else None

        out.update(
            usd_total=usd_total,
            usd_per_hour=usd_total / (end_s / 3600.0) if end_s > 0 else None,
            usd_per_million_output_tokens=per_million(out_tokens),
            usd_per_million_total_tokens=per_million(out_tokens + in_tokens),
            usd_per_request=usd_total / n_done if n_done else None,
            gpu_hours=gpu_hours,
        )
    met = int(slo_met(table, slo).sum())
    out["usd_per_slo_met_request"] = out["usd_total"] / met if met else None
    out["by_pool"] = by_pool
    return out


def extend_summary(
    summary: dict[str, Any],
    record: FleetRecord,
    *,
    indices: Sequence[int],
    table: pa.Table,
    slo: SLOSpec,
    end_s: float,
    static: bool,
) -> None:
    """Add `fleet` and `failures`, bill `cost` per pool, count failed requests."""
    summary["requests"]["failed"] = int(status_is(table, "failed").sum())
    summary["cost"] = cost_section(
        summary["cost"], record, table=table, slo=slo, end_s=end_s, static=static
    )
    summary["fleet"] = fleet_section(record, end_s)
    summary["failures"] = failures_section(record, indices, table)
