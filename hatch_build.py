"""The wheel's build hook: `INFSIM_BUILD=compiled pip install .` builds the compiled infsim.

    pip install .                                  # pure Python (the default, any platform)
    INFSIM_BUILD=compiled pip install .            # mypyc + numba AOT; needs a C compiler
    INFSIM_BUILD=compiled pip wheel . -w dist      # the same, as a platform wheel to ship

The compiled wheel holds the pure package's sources and, beside them, C extensions of the
modules in `infsim.compiled.COMPILED_MODULES` (mypyc) and the prefix pool's kernels compiled
ahead of time (numba), which Python imports in preference to the sources. Same code, so the
same outputs (CI compares every shipped scenario's fingerprints); about twice as fast.
`infsim --version` says which build is installed.

The compilers run on a copy of `infsim/` in a temporary folder, so the checkout stays pure
Python. An editable install cannot be compiled: the extensions would shadow the sources
being edited (`benchmarks/compiled.py` builds a compiled copy of a checkout instead).
"""

from __future__ import annotations

import os
import runpy
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILD_VARIABLE = "INFSIM_BUILD"
BUILDS = ("pure", "compiled")
COMPILER_REQUIREMENTS = ("mypy>=1.10", "setuptools>=68")
"""What the compilers need beside the project's own dependencies (mypyc builds its C with
setuptools, as numba's ahead-of-time compiler does)."""

AOT = """
from numba.pycc import CC
from infsim.kvcache import pool_kernels as k
cc = CC("_pool_kernels_aot")
cc.output_dir = "infsim/kvcache"
for name, signature in k.AOT_SIGNATURES.items():
    cc.export(name, signature)(getattr(k, name).py_func)
cc.compile()
"""


def requested_build() -> str:
    """The build `INFSIM_BUILD` asks for: "pure" (unset or empty) or "compiled"."""
    build = os.environ.get(BUILD_VARIABLE, "").strip() or "pure"
    if build not in BUILDS:
        raise SystemExit(
            f"{BUILD_VARIABLE}={build!r} is not a build of infsim: use 'pure' (the default, "
            f"Python only) or 'compiled' (mypyc and numba; needs a C compiler)."
        )
    return build


def check_compiler() -> None:
    """Stop with a clear reason when no C compiler is on PATH (the one setuptools will run:
    $CC, else the compiler Python was built with)."""
    command = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    compiler = shlex.split(command)[0] if command.strip() else "cc"
    if shutil.which(compiler) is None:
        raise SystemExit(
            f"{BUILD_VARIABLE}=compiled needs a C compiler: {compiler!r} (from "
            f"{'$CC' if os.environ.get('CC') else 'the compiler Python was built with'}) is "
            f"not on PATH. Install one (gcc or clang) or set CC; or build the pure package "
            f"(unset {BUILD_VARIABLE})."
        )


def compile_modules(root: Path) -> None:
    """mypyc-compile `COMPILED_MODULES` of the package under `root`, in place: each module
    gets an extension beside its source, plus one shared library at `root`."""
    modules = runpy.run_path(str(root / "infsim/compiled.py"))["COMPILED_MODULES"]
    command = [sys.executable, "-m", "mypyc", "--ignore-missing-imports",
               "--follow-imports=silent", *modules]  # fmt: skip
    # mypyc's setuptools build must not see a project's pyproject (package discovery).
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        pyproject.rename(root / "pyproject.toml.src")
    try:
        subprocess.run(command, cwd=root, check=True)
    finally:
        if (root / "pyproject.toml.src").exists():
            (root / "pyproject.toml.src").rename(pyproject)
    shutil.rmtree(root / "build", ignore_errors=True)


def compile_pool_kernels(root: Path) -> None:
    """The prefix pool's kernels compiled ahead of time by numba (`infsim/kvcache/
    _pool_kernels_aot`): the compiled package then never imports numba (~0.55 s a
    process, `prefix_cache.compiled_kernels`). Same functions, so the same results."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", AOT], cwd=root, env=env, check=True)


def compile_package(root: Path) -> list[Path]:
    """Compile the infsim package under `root` in place; the extension files it made."""
    check_compiler()
    compile_modules(root)
    compile_pool_kernels(root)
    return sorted(p for suffix in EXTENSION_SUFFIXES for p in root.rglob(f"*{suffix}"))


class CompiledBuildHook(BuildHookInterface):
    """Adds the compiled extensions to the wheel when `INFSIM_BUILD=compiled`."""

    def dependencies(self) -> list[str]:
        if requested_build() != "compiled":
            return []
        return [*COMPILER_REQUIREMENTS, *self.metadata.core.dependencies]

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if requested_build() != "compiled":
            return
        if version != "standard":
            raise SystemExit(
                f"{BUILD_VARIABLE}=compiled builds a wheel (pip install . or pip wheel .), "
                f"not an editable install: the compiled modules would shadow the sources "
                f"being edited. For a compiled copy of a checkout use benchmarks/compiled.py."
            )
        self._work = work = Path(tempfile.mkdtemp(prefix="infsim-compiled-"))
        try:
            skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
            shutil.copytree(Path(self.root) / "infsim", work / "infsim", ignore=skip)
            extensions = compile_package(work)
        except BaseException:  # (finalize does not run after a failed build)
            shutil.rmtree(work, ignore_errors=True)
            raise
        for extension in extensions:
            relative = extension.relative_to(work).as_posix()
            build_data["force_include"][str(extension)] = relative
            self.app.display_info(f"compiled: {relative}")
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
