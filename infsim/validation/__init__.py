"""Validation against live benchmarks: parse a benchmark result (vLLM bench serve, in-process
vLLM RequestOutput metrics, SGLang, AIPerf, GuideLLM, LLMPerf), replay its requests through
a scenario's deployment, and compare.

    from infsim.validation import validate
    result = validate("result.json", "scenarios/vllm-cpu-tiny-llama.yaml")
    result.to_json()  # {"metrics": {"ttft_p99": {"measured", "predicted", "error_pct"}, ...},
                      #  "median_abs_error_pct": x, "run": {...}}
"""

from infsim.validation.compare import MetricComparison, ValidationResult
from infsim.validation.formats import load_measured
from infsim.validation.measured import MeasuredRequests, MeasuredRun
from infsim.validation.validate import validate

__all__ = [
    "MeasuredRequests",
    "MeasuredRun",
    "MetricComparison",
    "ValidationResult",
    "load_measured",
    "validate",
]
