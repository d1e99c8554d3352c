"""What the optional compiled build needs from the pure-Python source, and which build this is.

The compiled build is a wheel (`INFSIM_BUILD=compiled pip install .`, hatch_build.py) or a
compiled copy of a checkout (`benchmarks/compiled.py`); `infsim --version` names the build.

The hot modules (`COMPILED_MODULES`) compile with mypyc into C extensions that run the same
code about twice as fast; the pure-Python package stays the default and the reference (CI
runs the simulation's tests and every shipped scenario on both). A compiled class cannot be
subclassed by interpreted code unless it says so, which the replica and the scheduler do
(`mypyc_attr` with `allow_interpreted_subclasses=True`: a no-op without mypy_extensions).
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # the pure-Python package needs none of it

    def mypyc_attr(*_attrs: str, **_kwattrs: object):  # type: ignore[no-redef]
        return lambda cls: cls


COMPILED_MODULES = (
    "infsim/core/request.py",
    "infsim/core/batch.py",
    "infsim/kvcache/base.py",
    "infsim/kvcache/counter.py",
    "infsim/kvcache/prefix_cache.py",
    "infsim/scheduling/continuous.py",
    "infsim/frontend/api_server.py",
    "infsim/cost/roofline.py",
    "infsim/sim/replica.py",
    "infsim/sim/cluster.py",
    "infsim/metrics/recorder.py",
)
"""The modules the compiled build compiles: the per-request and per-step paths of a run."""

POOL_KERNELS_AOT = "infsim/kvcache/_pool_kernels_aot"
"""The prefix pool's kernels as numba compiles them ahead of time (an extension module)."""


def _has_extension(package_dir: Path, module_path: str) -> bool:
    """Whether the module at `module_path` ("infsim/....py", or no suffix) is an extension
    module beside its source in the package at `package_dir`."""
    stem = package_dir / Path(module_path).with_suffix("").relative_to("infsim")
    return any(stem.with_name(stem.name + suffix).exists() for suffix in EXTENSION_SUFFIXES)


def build_description(package_dir: Path | None = None) -> str:
    """Which build of infsim this is (or the package at `package_dir`), in words: "pure
    Python", "compiled: ...", or what a partly compiled package holds (a stale or broken
    build: the compiled parts run, the rest is Python, the outputs are the same)."""
    package_dir = package_dir or Path(__file__).resolve().parent
    num_compiled = sum(_has_extension(package_dir, module) for module in COMPILED_MODULES)
    has_kernels = _has_extension(package_dir, POOL_KERNELS_AOT)
    if num_compiled == 0 and not has_kernels:
        return "pure Python"
    kernels = "the prefix pool's kernels by numba ahead of time"
    if num_compiled == len(COMPILED_MODULES) and has_kernels:
        return f"compiled: {num_compiled} modules by mypyc, {kernels}"
    return f"partly compiled: {num_compiled} of {len(COMPILED_MODULES)} modules by mypyc, " + (
        kernels if has_kernels else "the prefix pool's kernels not compiled"
    )
