"""Numeric precisions: the one vocabulary for weight, KV-cache and compute dtypes.

Every precision name a user may write (scenario files, HF `torch_dtype`, vLLM
`--dtype` / `--kv-cache-dtype` / `--quantization`) is mapped here to a canonical name:

    canonical   aliases                      bytes/element   note
    bfloat16    bf16                         2
    float16     fp16, half                   2
    float32     fp32, float                  4
    fp8         fp8_e4m3, fp8_e5m2, ...      1               e4m3 and e5m2 cost the same
    int8        w8a16                        1
    int4        awq, gptq, w4a16             0.5             4-bit weight-only
    fp4         nvfp4, mxfp4                 0.5
    auto        (the model's dtype)          -               resolve with `resolve()`

Byte sizes ignore the per-group scales of quantised formats (about 0.25-0.5 bit per element
for 16-32 element groups); that is a few percent of weight bytes and is left to calibration.
"""

from __future__ import annotations

from infsim.errors import InputError, did_you_mean

AUTO = "auto"

BYTES_PER_ELEMENT: dict[str, float] = {
    "bfloat16": 2.0,
    "float16": 2.0,
    "float32": 4.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5,
}
"""Storage bytes per element for each canonical precision."""

_ALIASES: dict[str, str] = {
    "bf16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float": "float32",
    "fp8_e4m3": "fp8",
    "fp8_e5m2": "fp8",
    "fp8_e4m3fn": "fp8",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8",
    "w8a16": "int8",
    "awq": "int4",
    "gptq": "int4",
    "w4a16": "int4",
    "nvfp4": "fp4",
    "mxfp4": "fp4",
}

WEIGHT_ONLY = frozenset({"int4"})
"""Precisions that only store weights narrowly and compute in bfloat16/float16."""


def precision_names() -> list[str]:
    """Every accepted spelling: canonical names, `auto`, then aliases."""
    return [*BYTES_PER_ELEMENT, AUTO, *_ALIASES]


def canonical(name: str) -> str:
    """Canonical precision name for `name` (case-insensitive); `auto` stays `auto`.

    >>> canonical("BF16"), canonical("awq"), canonical("fp8_e5m2")
    ('bfloat16', 'int4', 'fp8')
    """
    key = str(name).strip().lower()
    if key in BYTES_PER_ELEMENT or key == AUTO:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise InputError(
        f"unknown precision {name!r}{did_you_mean(key, precision_names())}; "
        f"allowed: {', '.join(precision_names())}"
    )


def resolve(name: str, model_dtype: str) -> str:
    """Canonical name, with `auto` replaced by the (canonical) `model_dtype`."""
    precision = canonical(name)
    return canonical(model_dtype) if precision == AUTO else precision


def bytes_per_element(name: str) -> float:
    """Storage bytes per element; `auto` must be resolved against a model first."""
    precision = canonical(name)
    if precision == AUTO:
        raise InputError(
            "precision 'auto' means the model's dtype; resolve it with the model "
            "(ModelSpec.weight_bytes('auto') does this)"
        )
    return BYTES_PER_ELEMENT[precision]
