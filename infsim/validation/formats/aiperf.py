"""NVIDIA AIPerf `profile_export.jsonl` (per request) and `profile_export_aiperf.json`
(aggregates) — FORMATS.md §1.3. Both the early schema (Oct 2025: metric tags `ttft`,
metadata `timestamp_ns`/`credit_phase`, aggregates under `"records"`) and the current one
(0.10+: `time_to_first_token`, `request_start_ns`/`benchmark_phase`, top-level metrics).

Every metric carries its unit (`{"value": 730.1, "unit": "ms"}`), converted here. Output
length is `output_sequence_length` (all generated tokens, reasoning included); ITL is the
pooled `inter_chunk_latency` lists; warm-up records are skipped; a record with a non-null
`error` (e.g. 499 cancellation) is failed. The model name is read from the sibling
aggregate JSON's `input_config` when it exists (the JSONL does not name it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError
from infsim.validation.formats import BenchFormat, read_json, read_json_lines, register
from infsim.validation.measured import (
    THROUGHPUT_KEY,
    MeasuredRequests,
    MeasuredRun,
    finite_or_none,
    seconds_per_unit,
)

TTFT_TAGS = ("time_to_first_token", "ttft")
START_KEYS = ("request_start_ns", "timestamp_ns")
AGG_METRICS = {"ttft": TTFT_TAGS, "e2e": ("request_latency",), "itl": ("inter_chunk_latency",)}


def _seconds(metrics: dict[str, Any], tags: tuple[str, ...], where: str) -> Any:
    for tag in tags:
        entry = metrics.get(tag)
        if isinstance(entry, dict) and entry.get("value") is not None:
            scale = seconds_per_unit(str(entry.get("unit", "")), f"{where}: {tag}")
            value = entry["value"]
            if isinstance(value, list):
                return np.asarray(value, dtype=np.float64) * scale
            return float(value) * scale
    return None


def _count(metrics: dict[str, Any], tag: str) -> int:
    entry = metrics.get(tag)
    return int(entry["value"]) if isinstance(entry, dict) and entry.get("value") else 0


def _start_s(record: dict[str, Any]) -> float:
    meta = record.get("metadata") or {}
    for key in START_KEYS:
        if meta.get(key) is not None:
            return float(meta[key]) * 1e-9
    stamp = (record.get("metrics") or {}).get("min_request_timestamp") or {}
    return float(stamp["value"]) * 1e-9 if stamp.get("value") is not None else np.nan


def _is_warmup(record: dict[str, Any]) -> bool:
    meta = record.get("metadata") or {}
    return "warmup" in str(meta.get("benchmark_phase") or meta.get("credit_phase") or "")


def _requests(records: list[dict[str, Any]], path: Path) -> MeasuredRequests:
    cols: dict[str, list[Any]] = {k: [] for k in ("in", "out", "ttft", "e2e", "failed", "start")}
    itls: list[np.ndarray] = []
    for number, record in enumerate(records, start=1):
        metrics = record.get("metrics") or {}
        where = f"{path}: record {number}"
        failed = record.get("error") is not None
        ttft = _seconds(metrics, TTFT_TAGS, where)
        e2e = _seconds(metrics, ("request_latency",), where)
        cols["in"].append(_count(metrics, "input_sequence_length"))
        cols["out"].append(_count(metrics, "output_sequence_length"))
        cols["ttft"].append(np.nan if ttft is None else ttft)
        cols["e2e"].append(np.nan if e2e is None else e2e)
        cols["failed"].append(failed or ttft is None or e2e is None)
        cols["start"].append(_start_s(record))
        gaps = _seconds(metrics, ("inter_chunk_latency",), where)
        itls.append(np.asarray([], dtype=np.float64) if gaps is None else np.atleast_1d(gaps))
    start = np.asarray(cols["start"], dtype=np.float64)
    return MeasuredRequests(
        num_input_tokens=np.asarray(cols["in"], dtype=np.int64),
        num_output_tokens=np.asarray(cols["out"], dtype=np.int64),
        ttft_s=np.asarray(cols["ttft"], dtype=np.float64),
        e2e_s=np.asarray(cols["e2e"], dtype=np.float64),
        failed=np.asarray(cols["failed"], dtype=bool),
        start_s=None if np.isnan(start).any() else start,
        itl_s=itls,
    )


def _sibling_aggregate(path: Path) -> dict[str, Any] | None:
    name = path.name.replace("profile_export.jsonl", "profile_export_aiperf.json")
    sibling = path.with_name(name)
    if name == path.name or not sibling.is_file():
        return None
    data = read_json(sibling)
    return data if isinstance(data, dict) else None


def _model(aggregate: dict[str, Any] | None) -> str | None:
    config = (aggregate or {}).get("input_config") or {}
    names = (config.get("endpoint") or {}).get("model_names") or []
    return names[0] if names else None


def _read_records(path: Path) -> MeasuredRun:
    records = [r for r in read_json_lines(path) if not _is_warmup(r)]
    if not records:
        raise InputError(f"{path}: no profiling records (all are warm-up)")
    requests = _requests(records, path)
    aggregate = _sibling_aggregate(path)
    stats = _aggregate_stats(aggregate) if aggregate else {}
    return MeasuredRun(
        format="aiperf",
        source=str(path),
        model=_model(aggregate),
        requests=requests,
        stats={k: v for k, v in stats.items() if k == THROUGHPUT_KEY},
        duration_s=stats.get("__duration_s"),
        num_completed=int((~requests.failed).sum()),
        num_failed=int(requests.failed.sum()),
        notes=("output length = output_sequence_length (reasoning tokens included)",),
    )


def _metric_table(aggregate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    records = aggregate.get("records")
    if isinstance(records, dict):  # early schema: {"records": {tag: {...}}}
        return {k: v for k, v in records.items() if isinstance(v, dict)}
    if isinstance(records, list):
        return {r.get("tag"): r for r in records if isinstance(r, dict)}
    return {k: v for k, v in aggregate.items() if isinstance(v, dict) and "unit" in v}


def _aggregate_stats(aggregate: dict[str, Any]) -> dict[str, float]:
    table = _metric_table(aggregate)
    out: dict[str, float] = {}
    for ours, tags in AGG_METRICS.items():
        entry = next((table[t] for t in tags if t in table), None)
        if entry is None:
            continue
        scale = seconds_per_unit(str(entry.get("unit", "")), f"aiperf metric {ours}")
        for stat, key in (("mean", "avg"), ("p50", "p50"), ("p90", "p90"), ("p99", "p99")):
            value = finite_or_none(entry.get(key))
            if value is not None:
                out[f"{ours}_{stat}"] = value * scale
    throughput = finite_or_none((table.get("output_token_throughput") or {}).get("avg"))
    if throughput is not None:
        out[THROUGHPUT_KEY] = throughput
    duration = table.get("benchmark_duration") or {}
    if finite_or_none(duration.get("avg")) is not None:
        out["__duration_s"] = duration["avg"] * seconds_per_unit(str(duration["unit"]), "aiperf")
    return out


def _read_aggregate(path: Path) -> MeasuredRun:
    data = read_json(path)
    stats = _aggregate_stats(data)
    table = _metric_table(data)
    count = finite_or_none((table.get("request_count") or {}).get("avg"))
    errors = finite_or_none((table.get("error_request_count") or {}).get("avg"))
    return MeasuredRun(
        format="aiperf",
        source=str(path),
        model=_model(data),
        requests=None,
        stats={k: v for k, v in stats.items() if not k.startswith("__")},
        duration_s=stats.get("__duration_s"),
        num_completed=None if count is None else int(count),
        num_failed=None if errors is None else int(errors),
        notes=("AIPerf aggregate export: aggregates only (use profile_export.jsonl to replay)",),
    )


def read_aiperf(path: Path, run_index: int | None) -> MeasuredRun:
    if run_index not in (None, 0):
        raise InputError(f"{path}: an AIPerf export holds one run; --run must be 0 or absent")
    with path.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        record = json.loads(first)
    except ValueError:  # a pretty-printed aggregate JSON starts with a lone "{"
        record = None
    if isinstance(record, dict) and "metadata" in record and "metrics" in record:
        return _read_records(path)
    return _read_aggregate(path)


def _sniff(path: Path, head: str) -> bool:
    per_request = '"metadata"' in head and '"metrics"' in head and '"unit"' in head
    aggregate = '"aiperf_version"' in head or ('"records"' in head and '"header"' in head)
    return per_request or aggregate


register(
    BenchFormat(
        "aiperf",
        read_aiperf,
        _sniff,
        "AIPerf profile_export.jsonl (per request) or profile_export_aiperf.json",
    )
)
