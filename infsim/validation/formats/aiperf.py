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

import math
from pathlib import Path
from typing import Any

import numpy as np

from infsim.errors import InputError
from infsim.textio import load_json, read_text
from infsim.validation import fields
from infsim.validation.formats import BenchFormat, parse_json_object, register, text_lines
from infsim.validation.measured import (
    THROUGHPUT_KEY,
    MeasuredRequests,
    MeasuredRun,
    seconds_per_unit,
    stated_rate,
    stated_seconds,
)

TTFT_TAGS = ("time_to_first_token", "ttft")
START_KEYS = ("request_start_ns", "timestamp_ns")
AGG_METRICS = {"ttft": TTFT_TAGS, "e2e": ("request_latency",), "itl": ("inter_chunk_latency",)}
RECORD_HELP = (
    "a profiling record of a successful request carries metrics time_to_first_token (or "
    "ttft), request_latency, input_sequence_length and output_sequence_length "
    '(each {"value": …, "unit": …}; a streaming run)'
)


class _Record:
    """One line of profile_export.jsonl, with errors naming the file, line and field."""

    def __init__(self, path: Path, line: int, data: dict[str, Any]):
        self.where = f"{path}: line {line}"
        self.data = data
        self.metrics = fields.mapping(data.get("metrics"), self.where, "metrics", optional=True)
        self.meta = fields.mapping(data.get("metadata"), self.where, "metadata", optional=True)
        self.failed = data.get("error") is not None

    def entry(self, tag: str) -> dict[str, Any] | None:
        """metrics.<tag> as {"value", "unit"}, or None when absent or its value is null."""
        entry = self.metrics.get(tag)
        if entry is None:
            return None
        entry = fields.mapping(entry, self.where, f"metrics.{tag}")
        return entry if entry.get("value") is not None else None

    def seconds(self, tags: tuple[str, ...]) -> float | None:
        for tag in tags:
            entry = self.entry(tag)
            if entry is not None:
                scale = seconds_per_unit(entry.get("unit"), f"{self.where}: metrics.{tag}.unit")
                return fields.seconds(entry["value"], self.where, f"metrics.{tag}.value",
                                      scale=scale)  # fmt: skip
        return None

    def gaps(self) -> np.ndarray:
        tag = "inter_chunk_latency"
        entry = self.entry(tag)
        if entry is None:
            return np.asarray([], dtype=np.float64)
        scale = seconds_per_unit(entry.get("unit"), f"{self.where}: metrics.{tag}.unit")
        value = entry["value"]
        if not isinstance(value, list):
            value = [value]
        expected = fields.SECONDS + f" (in units of {scale:g} s)"
        field = f"metrics.{tag}.value"
        return fields.number_array(value, self.where, field, scale=scale, expected=expected)

    def tokens(self, tag: str) -> int | None:
        entry = self.entry(tag)
        if entry is None:
            return None
        return fields.tokens(entry["value"], self.where, f"metrics.{tag}.value")

    def start_s(self) -> float:
        for key in START_KEYS:
            if self.meta.get(key) is not None:
                ns = fields.number(self.meta[key], self.where, f"metadata.{key}",
                                   lo=-fields.MAX_CLOCK_S * 1e9, hi=fields.MAX_CLOCK_S * 1e9,
                                   expected="a timestamp in nanoseconds")  # fmt: skip
                return ns * 1e-9
        entry = self.entry("min_request_timestamp")
        if entry is None:
            return math.nan
        scale = seconds_per_unit(entry.get("unit"), f"{self.where}: metrics.min_request_timestamp")
        value = fields.number(entry["value"], self.where, "metrics.min_request_timestamp.value",
                              expected="a timestamp")  # fmt: skip
        stamp = value * scale
        if abs(stamp) > fields.MAX_CLOCK_S:
            raise fields.fail(self.where, "metrics.min_request_timestamp.value", value,
                              fields.CLOCK)  # fmt: skip
        return stamp

    def is_warmup(self) -> bool:
        phase = self.meta.get("benchmark_phase") or self.meta.get("credit_phase") or ""
        return "warmup" in str(phase)


def _requests(records: list[_Record]) -> MeasuredRequests:
    n = len(records)
    num_in, num_out = np.zeros(n, np.int64), np.zeros(n, np.int64)
    ttft, e2e, start = np.full(n, np.nan), np.full(n, np.nan), np.empty(n)
    failed = np.zeros(n, dtype=bool)
    itls: list[np.ndarray] = []
    for i, record in enumerate(records):
        failed[i] = record.failed
        first, latency = record.seconds(TTFT_TAGS), record.seconds(("request_latency",))
        inputs = record.tokens("input_sequence_length")
        outputs = record.tokens("output_sequence_length")
        if not record.failed:
            missing = [name for name, value in (("time_to_first_token", first),
                       ("request_latency", latency), ("input_sequence_length", inputs),
                       ("output_sequence_length", outputs)) if value is None]  # fmt: skip
            if missing:
                raise InputError(
                    f"{record.where}: error is null but metrics lack {', '.join(missing)}; "
                    f"{RECORD_HELP}"
                )
        # a failed record keeps what it states; its values are not compared
        num_in[i], num_out[i] = inputs or 0, outputs or 0
        ttft[i] = np.nan if first is None else first
        e2e[i] = np.nan if latency is None else latency
        start[i] = record.start_s()
        itls.append(record.gaps())
    return MeasuredRequests(
        num_input_tokens=num_in,
        num_output_tokens=num_out,
        ttft_s=ttft,
        e2e_s=e2e,
        failed=failed,
        start_s=None if np.isnan(start).any() else start,
        itl_s=itls,
    )


def _sibling_aggregate(path: Path) -> dict[str, Any] | None:
    name = path.name.replace("profile_export.jsonl", "profile_export_aiperf.json")
    sibling = path.with_name(name)
    if name == path.name or not sibling.is_file():
        return None
    data = load_json(read_text(sibling, "AIPerf aggregate export"), str(sibling))
    if not isinstance(data, dict):
        raise InputError(f"{sibling}: expected a JSON object (AIPerf aggregate export)")
    return data


def _model(aggregate: dict[str, Any] | None, where: str) -> str | None:
    if aggregate is None:
        return None
    config = fields.mapping(aggregate.get("input_config"), where, "input_config", optional=True)
    endpoint = fields.mapping(config.get("endpoint"), where, "input_config.endpoint",
                              optional=True)  # fmt: skip
    names = fields.items(endpoint.get("model_names"), where,
                         "input_config.endpoint.model_names", optional=True)  # fmt: skip
    return fields.text(names[0], where, "input_config.endpoint.model_names[0]") if names else None


def _read_records(path: Path, lines: list[tuple[int, str]]) -> MeasuredRun:
    rows = [_Record(path, n, parse_json_object(line, f"{path}: line {n}")) for n, line in lines]
    records = [r for r in rows if not r.is_warmup()]
    if not records:
        raise InputError(f"{path}: no profiling records (all are warm-up)")
    requests = _requests(records)
    aggregate = _sibling_aggregate(path)
    sibling = str(path.with_name(path.name.replace("profile_export.jsonl",
                                                   "profile_export_aiperf.json")))  # fmt: skip
    stats = _aggregate_stats(aggregate, sibling) if aggregate else {}
    return MeasuredRun(
        format="aiperf",
        source=str(path),
        model=_model(aggregate, sibling),
        requests=requests,
        stats={k: v for k, v in stats.items() if k == THROUGHPUT_KEY},
        duration_s=stats.get("__duration_s"),
        num_completed=int((~requests.failed).sum()),
        num_failed=int(requests.failed.sum()),
        notes=("output length = output_sequence_length (reasoning tokens included)",),
    )


def _metric_table(aggregate: dict[str, Any], where: str) -> dict[str, Any]:
    """Tag → metric entry (checked where used) of either aggregate schema."""
    records = aggregate.get("records")
    if isinstance(records, dict):  # early schema: {"records": {tag: {...}}}
        return records
    if isinstance(records, list):
        table = {}
        for i, record in enumerate(records):
            record = fields.mapping(record, where, f"records[{i}]")
            tag = record.get("tag")
            if not isinstance(tag, str):
                raise fields.fail(where, f"records[{i}].tag", tag, "a metric tag (a string)")
            table[tag] = record
        return table
    if records is not None:
        raise fields.fail(where, "records", records, "a JSON object or array of metrics")
    return {k: v for k, v in aggregate.items() if isinstance(v, dict) and "unit" in v}


def _metric(table: dict[str, Any], tag: str, where: str) -> dict[str, Any] | None:
    return None if table.get(tag) is None else fields.mapping(table[tag], where, tag)


def _aggregate_stats(aggregate: dict[str, Any], where: str) -> dict[str, float]:
    table = _metric_table(aggregate, where)
    out: dict[str, float] = {}
    for ours, tags in AGG_METRICS.items():
        tag = next((t for t in tags if table.get(t) is not None), None)
        if tag is None:
            continue
        entry = _metric(table, tag, where)
        assert entry is not None
        scale = seconds_per_unit(entry.get("unit"), f"{where}: {tag}.unit")
        for stat, key in (("mean", "avg"), ("p50", "p50"), ("p90", "p90"), ("p99", "p99")):
            value = stated_seconds(entry.get(key), where, f"{tag}.{key}", scale)
            if value is not None:
                out[f"{ours}_{stat}"] = value
    throughput = _metric(table, "output_token_throughput", where)
    if throughput is not None:
        value = stated_rate(throughput.get("avg"), where, "output_token_throughput.avg")
        if value is not None:
            out[THROUGHPUT_KEY] = value
    duration = _metric(table, "benchmark_duration", where)
    if duration is not None and duration.get("avg") is not None:
        scale = seconds_per_unit(duration.get("unit"), f"{where}: benchmark_duration.unit")
        value = stated_seconds(duration["avg"], where, "benchmark_duration.avg", scale)
        if value is not None:
            out["__duration_s"] = value
    return out


def _stated_count(table: dict[str, Any], tag: str, where: str) -> int | None:
    entry = _metric(table, tag, where)
    value = None if entry is None else entry.get("avg")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return fields.count(value, where, f"{tag}.avg")


def _read_aggregate(path: Path, text: str) -> MeasuredRun:
    data = load_json(text, str(path))
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object (AIPerf profile_export_aiperf.json)")
    where = str(path)
    stats = _aggregate_stats(data, where)
    table = _metric_table(data, where)
    return MeasuredRun(
        format="aiperf",
        source=str(path),
        model=_model(data, where),
        requests=None,
        stats={k: v for k, v in stats.items() if not k.startswith("__")},
        duration_s=stats.get("__duration_s"),
        num_completed=_stated_count(table, "request_count", where),
        num_failed=_stated_count(table, "error_request_count", where),
        notes=("AIPerf aggregate export: aggregates only (use profile_export.jsonl to replay)",),
    )


def read_aiperf(path: Path, run_index: int | None) -> MeasuredRun:
    if run_index not in (None, 0):
        raise InputError(f"{path}: an AIPerf export holds one run; --run must be 0 or absent")
    text = read_text(path, "benchmark result file")
    lines = text_lines(text)
    if not lines:
        raise InputError(f"{path}: the file is empty")
    try:
        record = parse_json_object(lines[0][1], f"{path}: line {lines[0][0]}")
    except InputError:  # a pretty-printed aggregate JSON starts with a lone "{"
        record = None
    if record is not None and "metadata" in record and "metrics" in record:
        return _read_records(path, lines)
    return _read_aggregate(path, text)


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
