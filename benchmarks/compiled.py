"""Build the optional compiled infsim: the checkout copied to DEST, its hot modules compiled.

    pip install mypy                            # mypyc; and a C compiler
    python benchmarks/compiled.py DEST          # copy the tracked files, compile in DEST
    PYTHONPATH=DEST infsim run scenario.yaml     # the compiled package (same outputs)
    cd DEST && PYTHONPATH=DEST python -m pytest  # the tests, on the compiled package

mypyc compiles the modules of `infsim.compiled.COMPILED_MODULES` (the per-request and
per-step paths: request state, batches, the block counter, the scheduler, the API
servers, the roofline, the replica loop) into C extensions next to their sources in DEST;
the rest stays Python; and numba compiles the prefix pool's kernels ahead of time
(`compile_pool_kernels`). The pure-Python checkout is untouched and stays the reference:
`benchmarks/identical_outputs.py` run in both gives the same fingerprints, and the matrix
measures both (`PYTHONPATH=DEST python DEST/benchmarks/matrix.py`). Compiled in a copy,
never in place, so a wheel built from the checkout stays pure Python.
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_checkout(dest: Path) -> None:
    """The tracked files of the checkout (as they are in the working tree) into `dest`."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, names):
        src = REPO / name.decode()
        if src.is_file():  # (a tracked file deleted in the working tree is skipped)
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def compile_modules(dest: Path) -> None:
    modules = runpy.run_path(str(dest / "infsim/compiled.py"))["COMPILED_MODULES"]
    command = [sys.executable, "-m", "mypyc", "--ignore-missing-imports",
               "--follow-imports=silent", *modules]  # fmt: skip
    # mypyc's setuptools build must not see the project's pyproject (package discovery).
    (dest / "pyproject.toml").rename(dest / "pyproject.toml.src")
    try:
        subprocess.run(command, cwd=dest, check=True)
    finally:
        (dest / "pyproject.toml.src").rename(dest / "pyproject.toml")
    shutil.rmtree(dest / "build", ignore_errors=True)


AOT = """
from numba.pycc import CC
from infsim.kvcache import pool_kernels as k
cc = CC("_pool_kernels_aot")
cc.output_dir = "infsim/kvcache"
for name, signature in k.AOT_SIGNATURES.items():
    cc.export(name, signature)(getattr(k, name).py_func)
cc.compile()
"""


def compile_pool_kernels(dest: Path) -> None:
    """The prefix pool's kernels compiled ahead of time by numba (`infsim/kvcache/
    _pool_kernels_aot`): the compiled package then never imports numba (~0.55 s a
    process, `prefix_cache.compiled_kernels`). Same functions, so the same results."""
    env = {**os.environ, "PYTHONPATH": str(dest)}
    subprocess.run([sys.executable, "-c", AOT], cwd=dest, env=env, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest", type=Path, help="An empty (or absent) folder for the build.")
    args = ap.parse_args()
    dest = args.dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        sys.exit(f"{dest}: not empty; give an empty or absent folder")
    try:
        import mypyc  # noqa: F401
    except ImportError:
        sys.exit("mypyc is not installed: pip install mypy (and have a C compiler)")
    copy_checkout(dest)
    compile_modules(dest)
    compile_pool_kernels(dest)
    print(f"compiled infsim in {dest}: PYTHONPATH={dest} infsim ...")


if __name__ == "__main__":
    main()
