"""The constraint / --where expression language: what it computes and what it refuses."""

from __future__ import annotations

import pytest

from infsim.errors import InputError
from infsim.sweep.expr import Expression

NAMES = {"deployment.tensor_parallel": 4, "deployment.replicas": 2, "hardware.gpu": "h100-sxm",
         "status": "ok", "latency_s.ttft.p99": 0.3}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deployment.tensor_parallel * deployment.replicas <= 8", True),
        ("deployment.tensor_parallel * deployment.replicas < 8", False),
        ("hardware.gpu in ('h100-sxm', 'h200')", True),
        ("hardware.gpu not in ['h100-sxm']", False),
        ("status == 'ok' and latency_s.ttft.p99 < 0.5", True),
        ("not (status == 'ok') or 1 < deployment.replicas < 3", True),
        ("max(deployment.replicas, 3) % 2 == 1", True),
        ("-deployment.replicas + 2 == 0", True),
    ],
)
def test_evaluates_dotted_names(text: str, expected: bool):
    assert Expression(text, "t").evaluate(NAMES) is expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "status.upper() == 'OK'",
        "[x for x in (1, 2)]",
        "lambda: 1",
        "hardware.gpu[0] == 'h'",
    ],
)
def test_refuses_anything_but_the_whitelist(text: str):
    with pytest.raises(InputError, match=r"is not allowed|unknown name"):
        Expression(text, "constraints[0]").evaluate(NAMES)


def test_unknown_name_gets_a_did_you_mean():
    with pytest.raises(InputError, match=r"constraints\[1\].*'deployment.tensor_paralel'.*did "
                       r"you mean 'deployment.tensor_parallel'"):  # fmt: skip
        Expression("deployment.tensor_paralel > 1", "constraints[1]").evaluate(NAMES)


def test_syntax_error_names_the_place():
    with pytest.raises(InputError, match="--where: 'status ==' is not a valid expression"):
        Expression("status ==", "--where")
