"""Which build `infsim --version` names (infsim.compiled.build_description), read from the
extension modules beside the package's sources. CI sets INFSIM_EXPECT_BUILD when it runs
the tests on an installed compiled wheel, so a wheel that silently came out pure fails.
And the wheel's build hook (hatch_build.py) refuses what it cannot build, with a reason."""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from infsim.compiled import COMPILED_MODULES, POOL_KERNELS_AOT, build_description

REPO = Path(__file__).resolve().parents[1]


def _package(tmp_path: Path, compiled: tuple[str, ...]) -> Path:
    """A fake package tree: every compiled module's source, and an extension for `compiled`."""
    for module in COMPILED_MODULES:
        source = tmp_path / module
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
    for module in compiled:
        stem = tmp_path / Path(module).with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_name(stem.name + EXTENSION_SUFFIXES[0]).write_bytes(b"")
    return tmp_path / "infsim"


def test_sources_only_are_pure(tmp_path: Path) -> None:
    assert build_description(_package(tmp_path, ())) == "pure Python"


def test_every_module_and_the_kernels_are_compiled(tmp_path: Path) -> None:
    package = _package(tmp_path, (*COMPILED_MODULES, POOL_KERNELS_AOT))
    assert build_description(package) == (
        f"compiled: {len(COMPILED_MODULES)} modules by mypyc, "
        "the prefix pool's kernels by numba ahead of time"
    )


def test_a_partial_build_says_what_it_holds(tmp_path: Path) -> None:
    package = _package(tmp_path, COMPILED_MODULES[:3])
    assert build_description(package) == (
        f"partly compiled: 3 of {len(COMPILED_MODULES)} modules by mypyc, "
        "the prefix pool's kernels not compiled"
    )
    package = _package(tmp_path, (*COMPILED_MODULES[:-1], POOL_KERNELS_AOT))
    assert build_description(package).startswith(
        f"partly compiled: {len(COMPILED_MODULES) - 1} of {len(COMPILED_MODULES)} modules"
    )


def test_the_running_build_is_the_expected_one() -> None:
    expected = os.environ.get("INFSIM_EXPECT_BUILD")
    if not expected:
        pytest.skip("INFSIM_EXPECT_BUILD is not set (CI sets it for the compiled wheel's tests)")
    assert build_description().split(":")[0] == expected


def _hook():
    pytest.importorskip("hatchling", reason="the build hook needs hatchling (the test extra)")
    sys.path.insert(0, str(REPO))
    try:
        import hatch_build
    finally:
        sys.path.remove(str(REPO))
    return hatch_build


@pytest.mark.parametrize(
    ("value", "build"), [(None, "pure"), ("", "pure"), (" compiled ", "compiled")]
)
def test_the_hook_reads_the_build_asked_for(
    monkeypatch: pytest.MonkeyPatch, value: str | None, build: str
) -> None:
    hook = _hook()
    if value is None:
        monkeypatch.delenv("INFSIM_BUILD", raising=False)
    else:
        monkeypatch.setenv("INFSIM_BUILD", value)
    assert hook.requested_build() == build


def test_the_hook_refuses_an_unknown_build(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook()
    monkeypatch.setenv("INFSIM_BUILD", "fast")
    with pytest.raises(SystemExit, match=r"INFSIM_BUILD='fast' is not a build of infsim: use"):
        hook.requested_build()


def test_the_hook_needs_a_c_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook()
    monkeypatch.setenv("CC", "no-such-cc --quiet")
    with pytest.raises(SystemExit, match=r"needs a C compiler: 'no-such-cc' \(from \$CC\)"):
        hook.check_compiler()
