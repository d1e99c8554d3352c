"""Build the optional compiled infsim: the checkout copied to DEST, its hot modules compiled.

For users the compiled build is a wheel (`INFSIM_BUILD=compiled pip install .`,
hatch_build.py). This script makes a compiled copy of a whole checkout, tests and
benchmarks included, to develop and measure it; both compile with the same functions.

    pip install -e '.[compiled]'                # mypyc, hatchling; and a C compiler
    python benchmarks/compiled.py DEST          # copy the tracked files, compile in DEST
    PYTHONPATH=DEST infsim run scenario.yaml     # the compiled package (same outputs)
    cd DEST && PYTHONPATH=DEST python -m pytest  # the tests, on the compiled package

mypyc compiles the modules of `infsim.compiled.COMPILED_MODULES` (the per-request and
per-step paths: request state, batches, the block counter, the scheduler, the API
servers, the roofline, the replica loop) into C extensions next to their sources in DEST;
the rest stays Python; and numba compiles the prefix pool's kernels ahead of time
(`hatch_build.compile_pool_kernels`). The pure-Python checkout is untouched and stays the reference:
`benchmarks/identical_outputs.py` run in both gives the same fingerprints, and the matrix
measures both (`PYTHONPATH=DEST python DEST/benchmarks/matrix.py`). Compiled in a copy,
never in place, so a wheel built from the checkout stays pure Python.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest", type=Path, help="An empty (or absent) folder for the build.")
    args = ap.parse_args()
    dest = args.dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        sys.exit(f"{dest}: not empty; give an empty or absent folder")
    sys.path.insert(0, str(REPO))
    try:
        import mypyc  # noqa: F401

        from hatch_build import compile_package  # the wheel's build hook compiles the same
    except ImportError as err:
        sys.exit(f"{err.name} is not installed: pip install -e '.[compiled]' (and a C compiler)")
    copy_checkout(dest)
    compile_package(dest)
    print(f"compiled infsim in {dest}: PYTHONPATH={dest} infsim ...")


if __name__ == "__main__":
    main()
