"""What the optional compiled build needs from the pure-Python source (`benchmarks/compiled.py`).

The hot modules (`COMPILED_MODULES`) compile with mypyc into C extensions that run the same
code about twice as fast; the pure-Python package stays the default and the reference (CI
runs the simulation's tests and every shipped scenario on both). A compiled class cannot be
subclassed by interpreted code unless it says so, which the replica and the scheduler do
(`mypyc_attr` with `allow_interpreted_subclasses=True`: a no-op without mypy_extensions).
"""

from __future__ import annotations

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
