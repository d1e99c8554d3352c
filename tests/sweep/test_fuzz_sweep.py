"""Fuzzing the sweep layer (issue 15): random and mutated axes files, constraint and
`--where` expressions, and damaged result stores. Each example ends in a valid result or
an `InputError` — never another exception — and takes at most `MAX_SECONDS`.

CI runs `INFSIM_FUZZ_EXAMPLES` examples per target (default 100, derandomized so that CI
is repeatable). A long campaign, random each time:

    INFSIM_FUZZ_EXAMPLES=5000 INFSIM_FUZZ_RANDOM=1 .venv/bin/pytest tests/sweep/test_fuzz_sweep.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infsim.errors import InputError
from infsim.sweep.expr import Expression
from infsim.sweep.job import load_base, run_sweep
from infsim.sweep.points import PointContext, plan
from infsim.sweep.results import filter_rows, results_table, sort_rows
from infsim.sweep.spec import SweepSpec, parse_sweep, read_axes_file
from infsim.sweep.store import ResultStore
from tests.sweep.conftest import BASE, REPO

EXAMPLES = int(os.environ.get("INFSIM_FUZZ_EXAMPLES", "100"))
MAX_SECONDS = 2.0
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # timed by `bounded` instead: the first example pays for imports
    derandomize=not os.environ.get("INFSIM_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@contextlib.contextmanager
def bounded(what: Any) -> Iterator[None]:
    """Allow only InputError out of the block, and at most MAX_SECONDS in it."""
    t0 = time.perf_counter()
    message = "ok"
    try:
        yield
    except InputError as err:
        message = str(err)
    assert message.strip(), f"empty InputError for {what!r}"
    took = time.perf_counter() - t0
    assert took < MAX_SECONDS, f"{took:.1f} s for {str(what)[:200]!r}"


# -- axes files -----------------------------------------------------------------------------
PATHS = [
    "seed",
    "engine.max_num_seqs",
    "engine.block_size",
    "deployment.tensor_parallel",
    "deployment.replicas",
    "hardware.gpu",
    "workload.rate_scale",
    "name",
    "slo.ttft_s",
    "engine.max_num_seq",
    "deployment",
    "x.y",
    "",
    "a..b",
    "engine.max_num_seqs.x",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["h100-sxm", "a100-80gb", "l4", "auto", "fp8", "2"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
EXPR_ATOMS = [
    "1",
    "0",
    "-1",
    "2.5",
    "1e308",
    "9",
    "99",
    "'h100-sxm'",
    "'a'",
    "(1,)",
    "()",
    "True",
    "None",
    "deployment.tensor_parallel",
    "deployment.replicas",
    "hardware.gpu",
    "seed",
    "engine.max_num_seqs",
    "status",
    "latency_s.ttft.p99",
    "nosuch.name",
]
EXPR_OPS = [
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "**",
    "<",
    "<=",
    "==",
    "!=",
    " in ",
    " not in ",
    " and ",
    " or ",
]


@st.composite
def expressions(draw) -> str:
    """Mostly well-formed expressions (so evaluation is reached), some raw text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=60))
    text = draw(st.sampled_from(EXPR_ATOMS))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(EXPR_OPS))
        atom = draw(st.sampled_from(EXPR_ATOMS))
        shape = draw(st.integers(0, 5))
        if shape == 0:
            text = f"({text}){op}{atom}"
        elif shape == 1:
            text = f"{draw(st.sampled_from(['abs', 'min', 'max', 'round', 'not ', '-']))}({text})"
        elif shape == 2:
            text = f"{atom}{op}({text})"
        elif shape == 3:
            text = f"round({text}, {atom})"
        else:
            text = f"{text}{op}{atom}"
    return text


axes_specs = st.fixed_dictionaries(
    {"axes": st.dictionaries(st.sampled_from(PATHS), st.lists(values, max_size=4), max_size=3)},
    optional={
        "mode": st.sampled_from(["grid", "zip", "random", 1]),
        "constraints": st.lists(expressions(), max_size=2) | values,
        "skip_infeasible": st.booleans() | scalars,
        "extra": scalars,
    },
)


PLAUSIBLE = {
    "seed": st.integers(0, 100),
    "engine.max_num_seqs": st.sampled_from([4, 8, 16, 64, 0, -1, 2**40, "auto"]),
    "hardware.gpu": st.sampled_from(["h100-sxm", "a100-80gb", "l4", "l40s", "h200", "nope"]),
    "deployment.tensor_parallel": st.sampled_from([1, 2, 3, 4, 8, 1024]),
    "workload.rate_scale": st.floats(0.1, 4) | st.sampled_from([0.0, -1.0, 1e308]),
    "engine.block_size": st.sampled_from([16, 32, 7]),
}
SCENARIO_ATOMS = [
    "1",
    "2",
    "8",
    "0.5",
    "'h100-sxm'",
    "('l4', 'l40s')",
    "seed",
    "hardware.gpu",
    "engine.max_num_seqs",
    "deployment.tensor_parallel",
    "workload.rate_scale",
]


@st.composite
def plausible_specs(draw) -> dict[str, Any]:
    """Axes files a user would write (so that most reach planning), with a few slips."""
    paths = draw(st.lists(st.sampled_from(list(PLAUSIBLE)), min_size=1, max_size=3, unique=True))
    axes = {p: draw(st.lists(PLAUSIBLE[p], min_size=1, max_size=2)) for p in paths}
    spec: dict[str, Any] = {"axes": axes}
    if draw(st.booleans()):
        spec["skip_infeasible"] = draw(st.booleans())
    if draw(st.booleans()):
        atoms = st.sampled_from(SCENARIO_ATOMS)
        ops = st.sampled_from(["<", "<=", "==", "!=", " in ", "*", "+", "**", "%", " and "])
        spec["constraints"] = [
            f"{draw(atoms)}{draw(ops)}{draw(atoms)}{draw(st.sampled_from(['', ' > 1']))}"
            for _ in range(draw(st.integers(1, 2)))
        ]
    if draw(st.integers(0, 4)) == 0:
        lengths = {len(v) for v in axes.values()}
        spec["mode"] = "zip" if len(lengths) == 1 else draw(st.sampled_from(["zip", "grid"]))
    return spec


def _ctx() -> PointContext:
    import copy

    return PointContext(base_raw=copy.deepcopy(BASE), base_dir=Path("."), source="base.yaml")


def _plan(spec: SweepSpec) -> None:
    tasks, skipped = plan(_ctx(), spec, "axes.yaml", max_points=6)
    assert len(tasks) + len(skipped) == spec.num_points


@FUZZ
@given(data=plausible_specs() | axes_specs)
def test_fuzz_structured_axes_validate_or_refuse(data: dict[str, Any]):
    with bounded(data):
        _plan(parse_sweep(data, "axes.yaml"))


def _mutate(text: bytes, draw) -> bytes:
    data = bytearray(text)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 4))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == 1:
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"[",
                        b"{",
                        b"]",
                        b"&a ",
                        b"*a",
                        b"\xff",
                        b"\x00",
                        b"9" * 5000,
                        b": ",
                        b"\n  ",
                        b"- ",
                        b"!!python/object:os.system ",
                        b".inf",
                        b"[" * 200,
                        b"'",
                        b'"',
                        b"#",
                    ]
                )
            )
        elif kind == 2:
            del data[pos : pos + draw(st.integers(1, 20))]
        elif kind == 3:
            data = data[:pos]
        else:
            data[pos:pos] = data[: draw(st.integers(0, 40))]
    return bytes(data)


SEED_AXES = [
    (REPO / "scenarios" / "sweeps" / "llama8b-gpu-tp.axes.yaml").read_bytes(),
    yaml.safe_dump(
        {
            "mode": "zip",
            "axes": {"seed": [1, 2], "engine.max_num_seqs": [8, 16]},
            "constraints": ["seed < 2 or engine.max_num_seqs > 8"],
        }
    ).encode(),
]


@FUZZ
@given(seed=st.sampled_from(SEED_AXES), data=st.data())
def test_fuzz_mutated_axes_files_validate_or_refuse(seed: bytes, data):
    raw = _mutate(seed, data.draw) if data.draw(st.integers(0, 7)) else data.draw(st.binary())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "axes.yaml"
        path.write_bytes(raw)
        with bounded(raw):
            _plan(read_axes_file(path))


# -- expressions ----------------------------------------------------------------------------
NAMES = {
    "deployment.tensor_parallel": 4,
    "deployment.replicas": 2,
    "hardware.gpu": "h100-sxm",
    "seed": 3,
    "engine.max_num_seqs": 256,
    "status": "ok",
    "latency_s.ttft.p99": 0.3,
}


@FUZZ
@given(text=expressions() | st.text(max_size=200))
def test_fuzz_expressions_evaluate_or_refuse(text: str):
    with bounded(text):
        Expression(text, "constraints[0]").evaluate(NAMES)


@FUZZ
@given(text=expressions(), sort=st.text(max_size=30) | st.sampled_from(["-status", "point,-x"]))
def test_fuzz_where_and_sort_on_a_mixed_table(text: str, sort: str):
    table = pd.DataFrame(
        {
            "status": ["ok", "failed", "ok"],
            "latency_s.ttft.p99": [0.3, None, 2.0],
            "hardware.gpu": ["h100-sxm", 4, None],
            "seed": [1, 2, 3],
            "deployment.tensor_parallel": [1, 2, 4],
            "deployment.replicas": [1, 1, 2],
            "engine.max_num_seqs": [8, "auto", 2.5],
            "point": [0, 1, 2],
        }
    )
    with bounded(text):
        filter_rows(table, text)
    with bounded(sort):
        sort_rows(table, sort)


# -- damaged stores -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-store")
    base = root / "base.yaml"
    base.write_text(yaml.safe_dump(BASE))
    ctx, _ = load_base(base)
    spec = parse_sweep({"axes": {"engine.max_num_seqs": [4, 16, 64]}}, "axes.yaml")
    run_sweep(ctx, spec, ResultStore(root / "sweep"))
    return root / "sweep"


def _damage(root: Path, draw) -> None:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".lock"))
    for _ in range(draw(st.integers(1, 3))):
        if not files:
            return
        victim = draw(st.sampled_from(files))
        if not victim.is_file():
            continue
        data = victim.read_bytes()
        kind = draw(st.integers(0, 6))
        if kind == 0:
            victim.write_bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])
        elif kind == 1 and data:
            pos = draw(st.integers(0, len(data) - 1))
            flipped = bytes([data[pos] ^ (1 << draw(st.integers(0, 7)))])
            victim.write_bytes(data[:pos] + flipped + data[pos + 1 :])
        elif kind == 2:
            victim.write_bytes(draw(st.binary(max_size=200)))
        elif kind == 3:
            victim.unlink()
        elif kind == 4:
            victim.unlink()
            victim.mkdir()
        elif kind == 5 and victim.suffix == ".json":
            victim.write_text(
                draw(
                    st.sampled_from(
                        [
                            '{"points": [{"key": 1}]}',
                            '{"points": [{"key": "ab", "index": 0, "overrides": []}]}',
                            '{"kind": "other"}',
                            '{"axes": []}',
                            "null",
                            '{"points": null}',
                            '{"points": [{"key": "ab", "index": true, "overrides": {}}]}',
                        ]
                    )
                )
            )
        else:
            (victim.parent / f"{'0' * 64}.parquet").write_bytes(data[: len(data) // 3])


@FUZZ
@given(data=st.data())
def test_fuzz_damaged_stores_read_or_refuse_and_resume(finished_store: Path, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sweep"
        shutil.copytree(finished_store, root)
        _damage(root, data.draw)
        with bounded("results"):
            store = ResultStore(root, create=False)
            store.manifest()
            results_table(store, include_all=data.draw(st.booleans()))
        commands = [["results", str(root), "--columns", "all"]]
        if data.draw(st.integers(0, 9)) == 0:  # report draws plots: slower, so sometimes
            commands.append(["report", str(root)])
        for command in commands:
            result = CliRunner().invoke(_main(), command)
            assert result.exit_code in (0, 2), result.output
            assert "internal error" not in result.output
        with bounded("resume"):  # a writer: damaged points are pending, never trusted
            writer = ResultStore(root)
            valid, damaged = writer.scan()
            assert not valid & set(damaged)
            for key in valid:
                row = writer.read(key)
                assert row["key"] == key


def _main():
    from infsim.cli import main

    return main
