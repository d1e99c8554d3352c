"""Roofline cost model v0: every operation is compute- or memory-bound, whichever is slower.

For each op, time = max(FLOPs / (peak FLOP/s × compute_efficiency),
bytes / (HBM bandwidth × memory_efficiency)). Per decoder layer (per GPU under TP):

    qkv_proj   GEMM  [T × h] · [h × (q + 2·kv)·d / TP]
    attention        pairs·4·heads·d FLOPs; KV bytes read = kv_tokens · 2·kv_heads·d·kv_bytes
    o_proj     GEMM  [T × heads·d/TP] · [heads·d/TP × h]
    mlp        GEMMs gate+up [h × 2i/TP], down [i/TP × h]   (MoE: top-k experts of E)
    norms etc. elementwise, memory-bound (2 RMSNorms, residual adds, activation)
    all_reduce 2 per layer when TP > 1: α + 2(TP−1)/TP · T·h·2 bytes / link bandwidth
               (the TP group's link: inter-node when it spans nodes; parallel/network.py)
    EP > 1     MoE layers: the MLP all-reduce becomes an all-to-all dispatch and combine
               over the EP ranks (each owns T/EP tokens, sends T/EP·k·h·2 bytes), an
               all-gather over EP re-replicating the T·h·2 hidden states for TP attention,
               and an all-reduce over the TP/EP ranks sharing each expert

plus the LM head for the rows that sample (and for each speculative draft verified: the
rejection sampler needs the target's logits at every draft position), and a per-step
overhead (scheduler, Python, kernel launches) fixed + per sequence. T = batched tokens.
Weight bytes follow the weight precision (fp8 halves them; fp8/fp4 GEMMs run at the GPU's
fp8/fp4 rate, weight-only int4 at the bf16 rate); KV bytes follow the KV-cache precision.
The efficiencies and overheads are parameters, not measurements: issue #3's calibrated
tables replace them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infsim.core.batch import Batch
from infsim.cost.base import attention_work
from infsim.cost.perturb import ROOFLINE_OP_CLASS, OpMultipliers, prefill_rows
from infsim.parallel.network import Link, all_gather_s, all_reduce_s, all_to_all_s

ACTIVATION_BYTES = 2  # bf16 activations


DENSE_CACHE_ENTRIES = 1 << 16
"""Bound of the dense-cost memo (`_dense_s`)."""

NUMPY_RUN = 64
"""`decode_run_times_s` prices a run of this many steps or more with numpy, and returns
the float64 array (the replica sums and streams it as an array, `CostModel`): a list
comprehension costs ~60–150 ns a step, numpy ~2–3 µs a call when called often (even at
~40 steps) but ~20 µs when rare (its code out of the caches: ~150 steps)."""


@dataclass(frozen=True, slots=True)
class RooflineParams:
    compute_efficiency: float = 0.6
    memory_efficiency: float = 0.8
    step_overhead_s: float = 0.0005
    per_seq_overhead_s: float = 0.000005
    collective_latency_s: float = 0.00001


@dataclass(frozen=True, slots=True)
class ReplicaShape:
    """What the cost model needs of model × GPU × parallelism (numbers per GPU)."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads_per_gpu: float
    num_kv_heads_per_gpu: float
    head_dim: int
    vocab_size: int
    num_experts: int
    num_experts_per_tok: int
    moe_intermediate_size: int
    tensor_parallel: int
    weight_bytes_per_param: float
    kv_bytes_per_element: float
    gemm_flops_per_s: float
    attention_flops_per_s: float
    mem_bandwidth_bytes_per_s: float
    link_bandwidth_bytes_per_s: float
    link_latency_s: float | None = None
    """α of the TP/EP group's link; None = the scenario's collective_latency_s."""
    expert_parallel: int = 1


class RooflineCostModel:
    """Analytic step time; dense GEMM cost cached per (tokens, sampled rows).

    `multipliers` (cost-model uncertainty, `infsim.cost.perturb`) scale each op by its
    class; the default factors are 1.0, and x · 1.0 is x exactly, so an unperturbed model
    prices every step to the same float as before the hook existed."""

    def __init__(
        self, shape: ReplicaShape, params: RooflineParams, multipliers: OpMultipliers | None = None
    ) -> None:
        self.shape = shape
        self.params = params
        self.multipliers = multipliers or OpMultipliers()
        s = shape
        flops = s.gemm_flops_per_s * params.compute_efficiency
        self._flops = flops
        self._bw = s.mem_bandwidth_bytes_per_s * params.memory_efficiency
        attn_flops = s.attention_flops_per_s * params.compute_efficiency
        self._s_per_pair = s.num_layers * 4 * s.num_heads_per_gpu * s.head_dim / attn_flops
        kv_bytes_per_token = 2 * s.num_kv_heads_per_gpu * s.head_dim * s.kv_bytes_per_element
        self._s_per_kv_token = s.num_layers * kv_bytes_per_token / self._bw
        # (num_tokens, num_sampled) packed in one int → dense seconds; a pure function's
        # memo, emptied when full (a long fleet run meets ~10⁵ distinct shapes; unbounded
        # it held ~120 bytes per request of a 1 M-request run)
        self._dense_cache: dict[int, float] = {}
        # A miss there is priced from the ops that depend on the tokens alone (memoised per
        # token count: a fleet run meets ~10× fewer token counts than shapes) and the LM
        # head of the sampled rows (per row count).
        self._token_ops: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self._lm_head_ops: dict[int, float] = {}
        alpha = params.collective_latency_s if s.link_latency_s is None else s.link_latency_s
        self.link = Link("tp", alpha, s.link_bandwidth_bytes_per_s)

    # -- public ---------------------------------------------------------------------
    def step_time_s(self, batch: Batch) -> float:
        pairs, kv_tokens = attention_work(batch)
        dense = self._dense_s(batch.num_batched_tokens, batch.num_sampled + batch.num_spec_tokens)
        attn = max(pairs * self._s_per_pair, kv_tokens * self._s_per_kv_token)
        return dense + attn * self.multipliers.attention + self._overhead_s(batch.num_seqs)

    def decode_run_times_s(
        self, num_seqs: int, sum_context_tokens: int, num_steps: int
    ) -> list[float] | np.ndarray:
        # Decode: pairs == KV tokens, and max(kv·a, kv·b) == kv·max(a, b) exactly in IEEE
        # arithmetic (rounding is monotone), so this equals step_time_s bit for bit.
        fixed = self._dense_s(num_seqs, num_seqs)
        overhead = self._overhead_s(num_seqs)
        per_kv = max(self._s_per_pair, self._s_per_kv_token)
        m_attn = self.multipliers.attention
        kv0 = sum_context_tokens + num_seqs  # step j reads kv0 + num_seqs·j KV tokens
        kvs = range(kv0, kv0 + num_seqs * num_steps, num_seqs)
        if num_steps < NUMPY_RUN:
            return [fixed + kv * per_kv * m_attn + overhead for kv in kvs]
        # The same IEEE operations in the same order, elementwise: the int64 KV counts
        # convert to float64 as Python's ints do (exactly, < 2⁵³), then
        # fixed + ((kv · per_kv) · m_attn) + overhead (x · 1.0 is x: skipped).
        times = np.arange(kvs.start, kvs.stop, kvs.step, dtype=np.int64) * per_kv
        if m_attn != 1.0:
            times *= m_attn
        times += fixed
        times += overhead
        return times

    def compute_time_s(self, batch: Batch) -> float:
        """`step_time_s` without the per-step overhead: bit for bit the sum of
        `op_times_s`'s ops other than "overhead", in their order (the proposer's passes
        inside a step, `infsim.cost.draft`, are priced so on the hot path)."""
        pairs, kv_tokens = attention_work(batch)
        dense = self._dense_s(batch.num_batched_tokens, batch.num_sampled + batch.num_spec_tokens)
        attn = max(pairs * self._s_per_pair, kv_tokens * self._s_per_kv_token)
        return dense + attn * self.multipliers.attention

    def decode_pass_time_s(self, num_seqs: int, attention_work: int) -> float:
        """`compute_time_s` of `num_seqs` one-token rows whose query·key pairs and KV
        tokens both sum to `attention_work` (a proposer's decode pass, `infsim.cost.draft`),
        bit for bit, without building the batch. Rows of one token are never prefill rows,
        so `PrefillScaledRoofline` prices them as this plain model does."""
        dense = self._dense_s(num_seqs, num_seqs)
        attn = max(attention_work * self._s_per_pair, attention_work * self._s_per_kv_token)
        return dense + attn * self.multipliers.attention

    def op_times_s(self, batch: Batch) -> dict[str, float]:
        """Per-op breakdown of `step_time_s` (for reports and tests; not the hot path)."""
        pairs, kv_tokens = attention_work(batch)
        ops = self._dense_ops(batch.num_batched_tokens, batch.num_sampled + batch.num_spec_tokens)
        attn = max(pairs * self._s_per_pair, kv_tokens * self._s_per_kv_token)
        ops["attention"] = attn * self.multipliers.attention
        ops["overhead"] = self._overhead_s(batch.num_seqs)
        return ops

    # -- internals ------------------------------------------------------------------
    def _dense_s(self, num_tokens: int, num_sampled: int) -> float:
        key = (num_tokens << 32) | num_sampled  # num_sampled < 2³² (a batch's rows)
        dense = self._dense_cache.get(key)
        if dense is None:
            dense = self._dense_sum(num_tokens, num_sampled)
            if len(self._dense_cache) >= DENSE_CACHE_ENTRIES:
                self._dense_cache.clear()
            self._dense_cache[key] = dense
        return dense

    def _dense_sum(self, num_tokens: int, num_sampled: int) -> float:
        """`sum(self._dense_ops(num_tokens, num_sampled).values())` bit for bit: the same
        values in the same order summed by the same `sum`, the ops of the tokens (those
        before and after the LM head in `_dense_ops`'s order) and the LM head's memoised
        apart (each op is priced on its own: the tokens' ops do not read `num_sampled`)."""
        parts = self._token_ops.get(num_tokens)
        if parts is None:
            ops = self._dense_ops(num_tokens, 0)
            values = tuple(ops.values())
            i = list(ops).index("lm_head")
            parts = (values[:i], values[i + 1 :])
            if len(self._token_ops) >= DENSE_CACHE_ENTRIES:
                self._token_ops.clear()
            self._token_ops[num_tokens] = parts
        head = self._lm_head_ops.get(num_sampled)
        if head is None:
            head = self._lm_head_s(num_sampled) * self.multipliers.of_op("lm_head")
            if len(self._lm_head_ops) >= DENSE_CACHE_ENTRIES:
                self._lm_head_ops.clear()
            self._lm_head_ops[num_sampled] = head
        return sum((*parts[0], head, *parts[1]))

    def _overhead_s(self, num_seqs: int) -> float:
        overhead = self.params.step_overhead_s + self.params.per_seq_overhead_s * num_seqs
        return overhead * self.multipliers.overhead

    def _gemm_s(self, m: float, n: float, k: float) -> float:
        if m <= 0:
            return 0.0
        flops = 2.0 * m * n * k
        nbytes = n * k * self.shape.weight_bytes_per_param + m * (n + k) * ACTIVATION_BYTES
        return max(flops / self._flops, nbytes / self._bw)

    def _dense_ops(self, num_tokens: int, num_sampled: int) -> dict[str, float]:
        s, t = self.shape, num_tokens
        h, d, layers = s.hidden_size, s.head_dim, s.num_layers
        q_out = s.num_heads_per_gpu * d
        kv_out = s.num_kv_heads_per_gpu * d
        ops = {
            "qkv_proj": layers * self._gemm_s(t, q_out + 2 * kv_out, h),
            "o_proj": layers * self._gemm_s(t, h, q_out),
            "mlp": layers * self._mlp_s(t),
            "elementwise": layers * t * (8 * h) * ACTIVATION_BYTES / self._bw,
            "lm_head": self._lm_head_s(num_sampled),
        }
        if s.expert_parallel > 1:
            ops |= self._expert_parallel_comm_s(t)
        else:
            ops["all_reduce"] = 2 * layers * self._all_reduce_s(t * h * ACTIVATION_BYTES)
        m = self.multipliers
        return {op: v * m.of_op(op) for op, v in ops.items()}

    def _lm_head_s(self, num_sampled: int) -> float:
        s = self.shape
        return self._gemm_s(num_sampled, s.vocab_size / s.tensor_parallel, s.hidden_size)

    def _expert_parallel_comm_s(self, num_tokens: int) -> dict[str, float]:
        """Per step, all layers: attention all-reduce over TP; MoE dispatch + combine
        all-to-all and re-replicating all-gather over EP; expert all-reduce over TP/EP."""
        s, layers = self.shape, self.shape.num_layers
        ep, hidden_bytes = s.expert_parallel, num_tokens * s.hidden_size * ACTIVATION_BYTES
        routed_bytes = hidden_bytes * s.num_experts_per_tok / ep  # one rank's send buffer
        moe_tp = s.tensor_parallel // ep
        return {
            "all_reduce": layers * (
                self._all_reduce_s(hidden_bytes) + all_reduce_s(routed_bytes, moe_tp, self.link)
            ),
            "all_to_all": layers * 2 * all_to_all_s(routed_bytes, ep, self.link),
            "all_gather": layers * all_gather_s(hidden_bytes, ep, self.link),
        }  # fmt: skip

    def _mlp_s(self, t: int) -> float:
        s, h = self.shape, self.shape.hidden_size
        if not s.num_experts:
            i = s.intermediate_size / s.tensor_parallel
            return self._gemm_s(t, 2 * i, h) + self._gemm_s(t, h, i)
        # MoE: T·k token-expert pairs; expected distinct experts touched E·(1-(1-k/E)^T),
        # each of whose weights is read once.
        e, k = s.num_experts, s.num_experts_per_tok
        i = s.moe_intermediate_size / s.tensor_parallel
        touched = e * (1.0 - (1.0 - k / e) ** t)
        flops = 2.0 * t * k * 3 * h * i
        nbytes = touched * 3 * h * i * s.weight_bytes_per_param + t * k * 3 * h * 2
        router = self._gemm_s(t, e, h)
        return router + max(flops / self._flops, nbytes / self._bw)

    def _all_reduce_s(self, nbytes: float) -> float:
        return all_reduce_s(nbytes, self.shape.tensor_parallel, self.link)


class PrefillScaledRoofline(RooflineCostModel):
    """The roofline under a prefill factor ≠ 1 (`OpMultipliers.prefill`; the split rule is
    `infsim.cost.perturb`'s): the prefill rows' token share of the dense work and their
    share of the attention, A_p / (A_p + A_d), each part priced alone as the batch is.
    The factory builds it only then, so the plain model's hot path is unchanged; a step
    without prefill rows (decode runs too) is priced by the plain model, bit for bit."""

    def __init__(
        self, shape: ReplicaShape, params: RooflineParams, multipliers: OpMultipliers
    ) -> None:
        super().__init__(shape, params, multipliers)
        self._extra = multipliers.prefill - 1.0
        self._parts: dict[tuple[int, int], tuple[float, float]] = {}  # (dense, LM head)

    def step_time_s(self, batch: Batch) -> float:
        return self.compute_time_s(batch) + self._overhead_s(batch.num_seqs)

    def compute_time_s(self, batch: Batch) -> float:
        split = self._split(batch)
        if split is None:
            return super().compute_time_s(batch)
        k_dense, attn = split
        key = (batch.num_batched_tokens, batch.num_sampled + batch.num_spec_tokens)
        parts = self._parts.get(key)
        if parts is None:
            ops = self._dense_ops(*key)
            head = ops.pop("lm_head")
            if len(self._parts) >= DENSE_CACHE_ENTRIES:  # bounded like the dense memo
                self._parts.clear()
            parts = self._parts[key] = (sum(ops.values()), head)
        return parts[0] * k_dense + parts[1] + attn

    def op_times_s(self, batch: Batch) -> dict[str, float]:
        ops = super().op_times_s(batch)
        split = self._split(batch)
        if split is None:
            return ops
        k_dense, ops["attention"] = split
        for op in ops:
            if ROOFLINE_OP_CLASS.get(op) == "dense":
                ops[op] *= k_dense
        return ops

    def _split(self, batch: Batch) -> tuple[float, float] | None:
        """(dense factor, scaled attention seconds) of a step with prefill rows; None
        without."""
        tokens, pairs_p, kv_p = prefill_rows(batch)
        if not tokens:
            return None
        pairs, kv_tokens = attention_work(batch)
        a, b = self._s_per_pair, self._s_per_kv_token
        attn = max(pairs * a, kv_tokens * b)
        attn_p = max(pairs_p * a, kv_p * b)
        attn_d = max((pairs - pairs_p) * a, (kv_tokens - kv_p) * b)
        share = attn_p / (attn_p + attn_d)
        k_dense = 1.0 + self._extra * tokens / batch.num_batched_tokens
        return k_dense, attn * self.multipliers.attention * (1.0 + self._extra * share)
