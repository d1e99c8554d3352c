"""What a replica's cost model is built from: one frozen `ReplicaConfig`.

Resolution (`infsim.scenario.resolve.ResolvedScenario.replica`) fills it; the cost models
(`infsim.cost.factory`) read nothing else, so the cost layer never sees a scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from infsim.catalog.hardware import GPUSpec
from infsim.catalog.model_spec import ModelSpec
from infsim.speculative.spec import SpeculativeSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class HostOverhead:
    """Per-step host overhead terms (seconds) and where they come from
    (`infsim.scenario.host_overhead` resolves them)."""

    fixed_s: float
    per_seq_s: float
    per_worker_s: float
    source: str
    explicit: bool = False
    """The scenario set the fixed or per-sequence term: a table's measured rows do not
    replace them."""

    def step_s(self, num_seqs: int, num_workers: int = 1) -> float:
        return self.fixed_s + self.per_seq_s * num_seqs + self.per_worker_s * (num_workers - 1)

    def describe(self) -> str:
        return (f"{self.fixed_s * 1e3:.3f} ms + {self.per_seq_s * 1e6:.2f} µs per sequence + "
                f"{self.per_worker_s * 1e6:.1f} µs per extra worker")  # fmt: skip


@dataclass(frozen=True)
class ReplicaConfig:
    """One replica as its cost model sees it: model, accelerator and parallelism, the
    engine limits that bound the lookup grids, precisions, the roofline efficiencies, the
    host step overhead and the calibration table (None: the roofline)."""

    model: ModelSpec
    gpu: GPUSpec
    tensor_parallel: int
    pipeline_parallel: int
    expert_parallel: int
    gpus_per_node: int
    weight_precision: str
    kv_cache_precision: str
    max_num_batched_tokens: int
    max_num_seqs: int
    max_model_len: int
    compute_efficiency: float
    memory_efficiency: float
    collective_latency_s: float
    step_overhead: HostOverhead
    calibration_name: str = "roofline"
    calibration_rows: pd.DataFrame | None = field(default=None, repr=False)
    speculative: SpeculativeSpec | None = None
    draft_model: ModelSpec | None = None  # the proposer (draft model or head), resolved
    calibration_choice: dict | None = field(default=None, compare=False)
    """`calibration: auto`'s record of how the table was chosen (`AutoChoice.record`), for
    summary.json; None when the scenario named its table."""
    cuda_graph_max_tokens: int = 512
    """The largest step (batched tokens) the engine replays from a CUDA graph; larger steps
    run eagerly and pay the table's eager collective rows (`CalibratedCostModel`). 512:
    vLLM V1's default largest capture size (`max_cudagraph_capture_size`, ≤ 512); V0
    (< 0.8) captures decode batches of up to 256 sequences."""
    prefill_in_cuda_graph: bool = True
    """Whether steps with a prefill chunk run in a CUDA graph when small enough: vLLM V1's
    piecewise graphs do; V0 (< 0.8) runs every step with a prompt eagerly (`ModelRunner`
    captures decode batches only). Resolution sets both from the engine version
    (`infsim.scenario.vllm_defaults.cuda_graph_defaults`)."""

    @property
    def num_workers(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel
