"""Scenario names become safe directory names (docs/outputs.md): never a separator, never
outside the root, whatever the name holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from infsim.report.paths import MAX_NAME_BYTES, safe_name, safe_run_dir


@pytest.mark.parametrize(
    ("name", "directory"),
    [
        ("quickstart", "quickstart"),
        ("llama-3.1-8b_tp2", "llama-3.1-8b_tp2"),
        ("my run", "my_run"),
        ("../../x", "x"),
        ("/abs/dir", "abs_dir"),
        ("..", "unnamed"),
        (".", "unnamed"),
        ("", "unnamed"),
        (".hidden", "hidden"),
        ("a\\b:c\x00d\ne", "a_b_c_d_e"),
        ("模型一", "模型一"),
        ("e\u0301", "\u00e9"),  # NFC
    ],
)
def test_the_rule_on_examples(name: str, directory: str) -> None:
    assert safe_name(name) == directory
    assert safe_run_dir(name, Path("runs")) == Path("runs") / directory


def test_long_names_are_cut_and_kept_apart() -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    assert safe_name(a) != safe_name(b)
    assert len(safe_name(a).encode()) <= MAX_NAME_BYTES
    assert safe_name("é" * 200).startswith("é" * 45)  # cut between characters, not in one


NAMES = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from("./\\ _-:\x00ab"), max_size=40),
    st.lists(st.sampled_from(["..", ".", "/", "\\", "a", "~", "$HOME", "é"]), max_size=12).map(
        "".join
    ),
    st.text(min_size=90, max_size=400),
)


@given(NAMES)
@example("../" * 50 + "etc/passwd")
@example("/" + "a" * 1000)
@settings(max_examples=400, deadline=None)
def test_any_name_is_one_directory_inside_the_root(name: str) -> None:
    root = Path("/srv/runs")
    path = safe_run_dir(name, root)
    part = path.name
    assert path.parent == root
    for bad in ("/", "\\", "\x00"):
        assert bad not in part
    assert part not in ("", ".", "..")
    assert not part.startswith(".")
    assert len(part.encode("utf-8")) <= MAX_NAME_BYTES
    assert os.path.commonpath([root, os.path.normpath(path)]) == str(root)
    assert safe_name(part) == part  # idempotent: a safe name stays as it is


@given(NAMES)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_directory_can_be_created_where_it_says(tmp_path: Path, name: str) -> None:
    root = tmp_path / "runs"
    root.mkdir(exist_ok=True)
    path = safe_run_dir(name, root)
    path.mkdir(exist_ok=True)
    assert path.resolve().parent == root.resolve()
    assert [p.name for p in root.iterdir() if p.name == path.name] == [path.name]
