"""Workload layer: trace files and synthetic generators → the canonical request table.

load_trace(path) ─┐
                  ├─> Trace (Arrow table, traces/SCHEMA.md) ─> slice / scale ─> simulator
synthetic.* ──────┘
spec.build_trace(WorkloadSpec) does both from a scenario's `workload:` section.
"""

from infsim.workload.loaders import detect_format, format_names, load_trace
from infsim.workload.spec import WorkloadSpec, build_trace
from infsim.workload.trace import TRACE_SCHEMA, Trace

__all__ = [
    "TRACE_SCHEMA",
    "Trace",
    "WorkloadSpec",
    "build_trace",
    "detect_format",
    "format_names",
    "load_trace",
]
