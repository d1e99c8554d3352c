"""Default host step overhead of a serving engine: what a step costs beyond its kernels.

A real engine step is more than the kernels a calibration table prices: the scheduler
picks the batch, the model runner builds its inputs (block tables, positions, slot
mappings), the sampler runs, outputs are copied back and processed, and with tensor
parallelism the step's inputs are handed to every worker. That work is per step, grows
with the batch (per-sequence bookkeeping) and with the number of workers it is handed to.
GPU kernel tables (AIConfigurator, LLMServingSim, nccl) carry none of it, so without a
default a user would have to fit it (`infsim calibrate overhead`) before a prediction is
right. The defaults here are per engine family and release, each with its source:

    overhead(step) = fixed_s + per_seq_s · sequences + per_worker_s · (workers − 1)

where workers = tensor × pipeline parallel ranks of the replica.

Resolution (`resolve_step_overhead`, used by `scenario/resolve.py`): the scenario's
`cost_model` fields where set; else the calibration table's `step_overhead` metadata when
the table was measured under the release being simulated; else the entry below for that
release. A table's measured `step_overhead` rows (fitted residuals) replace the fixed and
per-sequence terms in the calibrated cost model, unless the scenario sets either.
"""

from __future__ import annotations

from dataclasses import dataclass

from infsim.cost.config import HostOverhead
from infsim.cost.table import CalibrationMeta, StepOverheadMeta
from infsim.scenario.schema import RooflineSpec
from infsim.scenario.vllm_defaults import V1_DEFAULT_SINCE, version_tuple


@dataclass(frozen=True, slots=True)
class _Entry:
    engine: str
    since: tuple[int, int, int]  # first release (inclusive)
    until: tuple[int, int, int] | None  # first release no longer covered (exclusive)
    overhead: HostOverhead


VLLM_V1 = HostOverhead(
    fixed_s=0.5e-3,
    per_seq_s=5e-6,
    per_worker_s=0.0,
    source=(
        "vLLM V1 (>= 0.8): infsim's standing default; checked on 20 held-out H100 "
        "deployments of vLLM 0.15.1 (TP1-TP4), where per-output-token time was within 4 % "
        "median with it (issue 13). No TP term: V1 broadcasts each step's scheduler output "
        "to its workers once through shared memory, and no measurement here resolves its cost"
    ),
)
VLLM_V0 = HostOverhead(
    fixed_s=6.08e-3,
    per_seq_s=0.0,
    per_worker_s=10.6e-6,
    source=(
        "vLLM V0 (< 0.8): fitted by validation/apex_overhead.py (--terms fixed_s,"
        "per_worker_s) to APEX+'s 29 vLLM 0.6.0 runs of Llama-3.1-70B on 8xH100 (TP2/TP4/"
        "TP8): measured decode time minus the h100-vllm-0.19 kernels of the same replay "
        "(V0's prefill-only steps, engine-side counters). "
        "Leave-one-workload-out TPOT error 2.2 % median (worst -14.5 %). The per-sequence "
        "term is not identified by these runs (batch widths 1-9): fitted too, it reached "
        "0.3 ms per sequence and put the held-out creation runs +116 % off, so it is 0"
    ),
)

DEFAULTS: tuple[_Entry, ...] = (
    _Entry("vllm", (0, 0, 0), V1_DEFAULT_SINCE, VLLM_V0),
    _Entry("vllm", V1_DEFAULT_SINCE, None, VLLM_V1),
)


def default_host_overhead(engine: str, version: str) -> HostOverhead:
    """The shipped default for `engine` at `version`. Engines without an entry of their own
    (sglang, trtllm, torch harness tables) get vLLM V1's, with a source that says so."""
    v = version_tuple(version) if version else (999, 0, 0)
    for entry in DEFAULTS:
        if entry.engine == engine and entry.since <= v and (entry.until is None or v < entry.until):
            return entry.overhead
    fallback = VLLM_V1
    return HostOverhead(fallback.fixed_s, fallback.per_seq_s, fallback.per_worker_s,
                        f"no default of its own for {engine} {version}; "
                        f"{fallback.source}")  # fmt: skip


def default_step_overhead_meta(engine: str, version: str) -> StepOverheadMeta:
    """What `infsim calibrate import` records in a table's meta.yaml for its engine."""
    d = default_host_overhead(engine, version)
    return StepOverheadMeta(fixed_s=d.fixed_s, per_seq_s=d.per_seq_s,
                            per_worker_s=d.per_worker_s, source=d.source)  # fmt: skip


TERMS = {"step_overhead_s": "fixed_s", "per_seq_overhead_s": "per_seq_s",
         "per_worker_overhead_s": "per_worker_s"}  # fmt: skip
"""scenario `cost_model` field → HostOverhead term"""


def resolve_step_overhead(
    spec: RooflineSpec, meta: CalibrationMeta | None, version: str
) -> HostOverhead:
    """The scenario's terms where set; the rest from the table's metadata (when the table
    was measured under `version`, or under another engine family) or the release default."""
    base = default_host_overhead("vllm", version)
    recorded = meta.step_overhead if meta is not None else None
    if recorded is not None and (meta.engine != "vllm" or meta.engine_version == version):
        base = HostOverhead(recorded.fixed_s, recorded.per_seq_s, recorded.per_worker_s,
                            f"calibration {meta.name} metadata: {recorded.source}")  # fmt: skip
    given = {term: getattr(spec, field) for field, term in TERMS.items()
             if getattr(spec, field) is not None}  # fmt: skip
    if not given:
        return base
    values = {term: given.get(term, getattr(base, term)) for term in TERMS.values()}
    named = ", ".join(f"cost_model.{f}" for f, t in TERMS.items() if t in given)
    source = "scenario" if len(given) == len(TERMS) else f"scenario ({named}); else {base.source}"
    explicit = "fixed_s" in given or "per_seq_s" in given
    return HostOverhead(**values, source=source, explicit=explicit)
