"""infsim: a trace-driven discrete-event simulator of LLM serving.

Data flow of one run (each stage a package; only `sim/` touches simpy)::

    trace ──► router ──► replica scheduler ──► batch ──► cost model ──► metrics ──► report
    workload/  routing/   scheduling/ + kvcache/  Batch    cost/          metrics/    report/
                          (vLLM V1 steps, paged KV,        (step time)
                           prefix cache, preemption)

    from infsim import load_scenario, run
    result = run(load_scenario("scenarios/quickstart.yaml"), "scenarios")
    result.summary["latency_s"]["ttft"]["p99"]
"""

from typing import TYPE_CHECKING, Any

__all__ = ["RunResult", "Scenario", "load_scenario", "run"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from infsim.api import RunResult, Scenario, load_scenario, run


def __getattr__(name: str) -> Any:
    """The API is imported on first use (PEP 562), so `import infsim` and `infsim --version`
    do not load the simulator, pandas and pyarrow."""
    if name in __all__:
        from infsim import api

        return getattr(api, name)
    raise AttributeError(f"module 'infsim' has no attribute {name!r}")
