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


BOMBS = {
    "9**9**9": "an integer of about 1,228,093,894 bits; at most 4,096 bits",
    "2**100000 > 1": "at most 4,096 bits",
    "deployment.replicas ** 99999": "at most 4,096 bits",
    "(1,)*10**10": "repeats a tuple of length 1 10000000000 times; at most 10,000 items",
    "'ab' * 10**9 == 'x'": "at most 10,000 items",
    "hardware.gpu * 10**9": "at most 10,000 items",
    "'%999999999d' % 1": "applies % to a string",
    "round(10, -10**8) == 0": "rounds to -100000000 digits; at most 400",
    "(1,)*9000 + (1,)*9000": "makes a tuple of 18,000 items",
    "x" * 3000: "is 3,000 characters long; at most 2,000",
    "-" * 1500 + "1": "nested more than 100 levels deep",
    "+".join(["1"] * 600): "has more than 500 terms|nested more than 100 levels",
    "1j == 1": "constant complex is not allowed",
}


def test_expressions_that_would_hang_or_exhaust_memory_are_refused_at_once(tmp_path):
    """`9**9**9` kept running 21 s after SIGINT; `(1,)*10**10` asked for 80 GB. Run in a
    child with a 1 GiB address-space cap and a timeout, so a regression fails, not hangs."""
    import json
    import subprocess
    import sys

    script = tmp_path / "bombs.py"
    script.write_text(
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "from infsim.errors import InputError\n"
        "from infsim.sweep.expr import Expression\n"
        f"names = {NAMES!r}\n"
        "out = {}\n"
        "for text in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        out[text] = 'value: %r' % (Expression(text, 'constraints[0]').evaluate(names),)\n"
        "    except InputError as err:\n"
        "        out[text] = str(err)\n"
        "    except BaseException as err:\n"
        "        out[text] = 'CRASH %s' % type(err).__name__\n"
        "print(json.dumps(out))\n"
    )
    from tests.sweep.conftest import REPO

    done = subprocess.run([sys.executable, str(script), json.dumps(list(BOMBS))], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    import re

    for text, expected in BOMBS.items():
        message = results[text]
        assert message.startswith("constraints[0]: "), (text, message)
        assert re.search(expected, message), (text, message)
        assert len(message) < 400, "the expression is shortened in the message"


def test_numpy_integers_from_a_results_table_are_bounded_too():
    import numpy as np

    with pytest.raises(InputError, match="at most 10,000 items"):
        Expression("(1,) * n", "--where").evaluate({"n": np.int64(10**10)})
    with pytest.raises(InputError, match="at most 4,096 bits"):
        Expression("n ** 99999", "--where").evaluate({"n": np.int64(7)})


def test_a_bounded_where_is_an_error_not_an_empty_table():
    """Rows whose values are missing (failed points) do not match; but an expression that
    breaks a bound on every row is an error, not a silently empty result."""
    import pandas as pd

    from infsim.sweep.results import filter_rows

    table = pd.DataFrame({"status": ["ok", "failed"], "latency_s.ttft.p99": [0.3, None]})
    assert list(filter_rows(table, "latency_s.ttft.p99 < 0.5")["status"]) == ["ok"]
    with pytest.raises(InputError, match="at most 4,096 bits"):
        filter_rows(table, "latency_s.ttft.p99 < 9**9**9")
