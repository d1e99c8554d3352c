"""Precision vocabulary: canonical names, aliases, byte sizes, errors."""

import pytest

from infsim.catalog import precision as prec
from infsim.errors import InputError


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("bf16", "bfloat16"),
        ("BFloat16", "bfloat16"),
        ("fp16", "float16"),
        ("half", "float16"),
        ("fp32", "float32"),
        ("fp8_e4m3", "fp8"),
        ("fp8_e5m2", "fp8"),
        ("int8", "int8"),
        ("awq", "int4"),
        ("gptq", "int4"),
        ("nvfp4", "fp4"),
        ("mxfp4", "fp4"),
        ("auto", "auto"),
    ],
)
def test_aliases_resolve_to_canonical(alias, expected):
    assert prec.canonical(alias) == expected


@pytest.mark.parametrize(
    ("name", "num_bytes"),
    [("bf16", 2), ("float16", 2), ("fp32", 4), ("fp8", 1), ("int8", 1), ("awq", 0.5), ("fp4", 0.5)],
)
def test_bytes_per_element(name, num_bytes):
    assert prec.bytes_per_element(name) == num_bytes


def test_auto_resolves_to_model_dtype():
    assert prec.resolve("auto", "bf16") == "bfloat16"
    assert prec.resolve("fp8", "bf16") == "fp8"
    with pytest.raises(InputError, match="resolve"):
        prec.bytes_per_element("auto")


def test_unknown_precision_lists_allowed_names_and_suggests():
    with pytest.raises(InputError, match=r"did you mean 'fp8'.*allowed: bfloat16, float16"):
        prec.canonical("fp9")
