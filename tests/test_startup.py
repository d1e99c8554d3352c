"""Start-up stays small: a roofline run imports neither pandas nor `pyarrow.compute`,
`infsim --version` not even numpy (docs/performance.md, "Start-up without pandas"). Each
check runs in a fresh process and reads its `sys.modules`: pyarrow imports pandas on its
first Python-to-Arrow or Arrow-to-numpy conversion, so one `pa.array` or `.to_numpy()`
added on the run path brings pandas' ~0.2 s back (`infsim.arrays` has the pandas-free
forms)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    """Modules imported by running `code` in a fresh interpreter: each top-level name, and
    the full names of pyarrow's submodules."""
    script = code + (
        "\nimport json, sys\nprint(json.dumps(sorted({m if m.startswith('pyarrow.') else"
        " m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_version_imports_neither_numpy_nor_pandas() -> None:
    modules = _modules_after(
        "import runpy, sys\n"
        "sys.argv = ['infsim', '--version']\n"
        "try:\n    runpy.run_module('infsim', run_name='__main__')\n"
        "except SystemExit:\n    pass"
    )
    assert "infsim" in modules
    assert not modules & {"numpy", "pandas", "pyarrow"}


SCENARIO = {
    "name": "startup",
    "seed": 1,
    "model": "llama-3.1-8b",
    "hardware": {"gpu": "h100-sxm"},
    "deployment": {"replicas": 2},
    "workload": {
        "synthetic": {
            "num_requests": 200,
            "arrival": {"kind": "poisson", "rate_per_s": 20},
            "prompt_tokens": {
                "kind": "lognormal",
                "mean": 500,
                "sigma": 0.5,
                "min": 8,
                "max": 4000,
            },
            "output_tokens": {"kind": "lognormal", "mean": 100, "sigma": 0.5, "min": 4, "max": 800},
        }
    },
}


def test_a_roofline_run_does_not_import_pandas(tmp_path) -> None:
    """The library path on a small synthetic workload over two replicas, its tables
    streamed to Parquet and published, and `infsim run` on a shipped scenario."""
    out = tmp_path / "api"
    modules = _modules_after(
        "import json, tempfile\n"
        "from pathlib import Path\n"
        "from infsim import api\n"
        "from infsim.scenario.load import validate_scenario\n"
        f"scenario = validate_scenario(json.loads({json.dumps(SCENARIO)!r}), 'test')\n"
        "resolved, trace = api.prepare(scenario, '.')\n"
        "with tempfile.TemporaryDirectory() as spool:\n"
        "    result = api.run_resolved(resolved, trace, spool_dir=Path(spool))\n"
        f"    result.write(Path({str(out)!r}))\n"
        "assert result.summary['requests']['completed'] == 200"
    )
    assert "pyarrow" in modules
    assert "pandas" not in modules
    assert "pyarrow.compute" not in modules  # ~40 ms to import: `arrays.equals_string`
    assert (out / "requests.parquet").exists()

    cli_out = tmp_path / "cli"
    modules = _modules_after(
        "import runpy, sys\n"
        f"sys.argv = ['infsim', 'run', 'scenarios/quickstart.yaml', '--quiet', '--no-report',"
        f" '-o', {str(cli_out)!r}]\n"
        "try:\n    runpy.run_module('infsim', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code"
    )
    assert (cli_out / "summary.json").exists()
    assert "pandas" not in modules
    assert "pyarrow.compute" not in modules


def test_a_small_prefix_caching_run_does_not_load_numba(tmp_path) -> None:
    """The shipped chat-sessions scenario (prefix caching on a trace with prefix ids,
    ~90,000 block operations) runs on the plain-Python pool kernels: numba's ~0.55 s
    and ~100 MiB are for runs long enough to repay them (`PROMOTE_AFTER_BLOCK_OPS`)."""
    modules = _modules_after(
        "import runpy, sys\n"
        "sys.argv = ['infsim', 'run', 'scenarios/chat-sessions-prefix-cache.yaml', '--quiet',"
        f" '--no-report', '-o', {str(tmp_path / 'out')!r}]\n"
        "try:\n    runpy.run_module('infsim', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "from infsim.kvcache import prefix_cache\n"
        "assert prefix_cache._active is not None and not prefix_cache._settled"
    )
    assert "numba" not in modules
    assert "llvmlite" not in modules


def test_the_command_line_freezes_the_heap_at_exit() -> None:
    """`infsim` freezes the collector's heap when the process exits, so the interpreter's
    last collection does not walk the run's objects (docs/performance.md)."""
    done = subprocess.run(
        [sys.executable, "-c", "import atexit, gc, infsim.cli\n"
         "before = gc.get_freeze_count()\natexit._run_exitfuncs()\n"
         "print(before, gc.get_freeze_count())"],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    before, after = map(int, done.stdout.split())
    assert before == 0
    assert after > 10_000


def test_an_azure_trace_run_does_not_import_pyarrow_compute(tmp_path) -> None:
    """The shipped Azure CSV sample's timestamps and counts are in their canonical forms,
    which `infsim.workload.canonical` parses without Arrow's compute functions."""
    scenario = {**SCENARIO, "workload": {
        "trace": {"path": str(REPO / "traces" / "azure_conv_2023_first3000.csv"),
                  "format": "azure"},
        "max_requests": 300, "rate_scale": 0.5}}  # fmt: skip
    modules = _modules_after(
        "import json, tempfile\n"
        "from pathlib import Path\n"
        "from infsim import api\n"
        "from infsim.scenario.load import validate_scenario\n"
        f"scenario = validate_scenario(json.loads({json.dumps(scenario)!r}), 'test')\n"
        "resolved, trace = api.prepare(scenario, '.')\n"
        "with tempfile.TemporaryDirectory() as spool:\n"
        "    result = api.run_resolved(resolved, trace, spool_dir=Path(spool))\n"
        "assert result.summary['requests']['completed'] == 300"
    )
    assert "pyarrow" in modules
    assert "pyarrow.compute" not in modules
    assert "pandas" not in modules
