"""Cost model calibrated from measured per-op tables (issue #3).

One decoder layer's time for a step with T batched tokens, decodes d_i and prefill chunks
(q_j over c_j cached tokens) is

    gemm_qkv(T) + gemm_o(T) + gemm_gate_up(T) + gemm_down(T)      measured GEMM curves
    + per-token ops(T) + 2 · all_reduce(T · hidden · 2 B)  (TP > 1) measured or roofline
    + decode_attention_b(mean KV length)                      b = number of decodes
    + Σ_j prefill_attention(√(q_j² + 2 q_j c_j))              equal-FLOP full prefill

times the layer count, plus the LM head and sampler for the rows that sample (and one row
per speculative draft verified) and the per-step overhead (fixed + per sequence, fitted
from whole-step measurements when the table has them). A chunk of q tokens over c cached
ones does as many query·key pairs as a fresh prompt of √(q² + 2qc) tokens, which is the
prefill measurement used for it.
A speculative verify row (q = 1 + d ≤ 1 + `batch.draft_k` new tokens) joins the decode
attention instead, over c + q KV tokens: like a decode it is bound by reading the KV once
(its q queries share the read; for GQA the extra FLOPs stay under the ridge point at the
k ≤ 8 engines use), which the equal-FLOP prefill mapping would miss by ~√(c/q).

All curves are sampled once on dense grids at construction (see `curves.py`), so a step
costs a handful of `numpy.interp` calls; pure-decode steps go through the same vectorised
path as fast-forwarded runs, so both give identical floats.

Coverage (summary.json's `calibration.coverage`, `infsim.cost.coverage`): next to each
summed grid the model keeps one grid per lookup kind (measured, interpolated, scaled,
roofline; overhead apart), so the seconds it prices split by how they were looked up.
Mixed steps (`op_times_s`) add their attention and overhead seconds by kind and count
their token and LM-head row numbers (those parts are split once, at the end);
pure-decode steps are tallied per batch width (steps, seconds) — every term of such a
step but the attention is fixed by the width, and the attention has one lookup kind per
width — and split at the end (`coverage_s`), so the vectorised decode path does no extra
work per step. Fast-forwarded runs are not tallied here: the replica may stop a run
early, so the seconds of the steps that ran come from the run record
(`Recorder.decode_runs_by_width`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from infsim.core.batch import Batch
from infsim.cost.coverage import NUM_KINDS, OVERHEAD, ROOFLINE, kind_of
from infsim.cost.curves import Curve, geometric_grid
from infsim.cost.lookup import CalibrationLookup
from infsim.cost.overhead import OverheadFit, fit_overhead
from infsim.cost.perturb import OpMultipliers
from infsim.cost.roofline import (
    ACTIVATION_BYTES,
    NUMPY_RUN,
    ReplicaShape,
    RooflineCostModel,
    RooflineParams,
)
from infsim.frontend.costs import fitted_request_path
from infsim.parallel.network import all_gather_s, all_reduce_s, all_to_all_s

PER_TOKEN_OPS = ("norm", "rotary", "activation", "elementwise")


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest sizes a step can ask for (grids cover them, so nothing extrapolates
    at run time)."""

    max_num_batched_tokens: int
    max_num_seqs: int
    max_model_len: int
    cuda_graph_max_tokens: int = 512
    """Steps above it run eagerly (`ReplicaConfig.cuda_graph_max_tokens`)."""
    prefill_in_cuda_graph: bool = True
    """False: every step with a prefill chunk runs eagerly (vLLM V0)."""


class CalibratedCostModel:
    def __init__(
        self,
        shape: ReplicaShape,
        lookup: CalibrationLookup,
        params: RooflineParams,
        limits: Limits,
        weight_dtype: str,
        kv_dtype: str,
        overhead_source: str = "scenario cost_model",
        rows_override: bool = True,
    ) -> None:
        self.shape, self.lookup, self.params = shape, lookup, params
        self._multipliers: OpMultipliers | None = None
        self._roof = RooflineCostModel(shape, params)
        self._layers = shape.num_layers
        self._kv_dtype = kv_dtype
        s = shape
        self._heads = (
            round(s.num_heads_per_gpu), round(s.num_kv_heads_per_gpu), s.head_dim
        )  # fmt: skip
        self._t_grid = geometric_grid(1, max(limits.max_num_batched_tokens, 2))
        self._b_grid = geometric_grid(1, max(limits.max_num_seqs, 2))
        self._kv_grid = geometric_grid(1, max(limits.max_model_len, 2))
        # Per lookup kind (coverage.KINDS) parts of the dense-layer and LM-head grids.
        self._dense_kinds = np.zeros((NUM_KINDS, self._t_grid.size))
        self._head_kinds = np.zeros((NUM_KINDS, self._b_grid.size))
        # Steps run outside a CUDA graph pay the eager collectives: `_eager_extra` is the
        # per-layer time they add over the graph-replayed ones, per T (0 with no TP or a
        # table that does not tell the modes apart); `_eager_kind` its lookup kind.
        self._graph_max_tokens = limits.cuda_graph_max_tokens
        self._prefill_in_graph = limits.prefill_in_cuda_graph
        self._eager_extra = np.zeros_like(self._t_grid)
        self._eager_kind = ROOFLINE
        self._dense = self._dense_layer_curve(weight_dtype)
        self._head = self._head_curve(weight_dtype)
        self._prefill = lookup.attention_prefill(
            self._heads, kv_dtype, self._kv_grid, self._prefill_roof
        )
        lookup.log.add("attention_prefill", self._heads_label, self._prefill,
                       (1, limits.max_model_len))  # fmt: skip
        self._overhead_fit = self._overhead(params, overhead_source, rows_override)
        self._log_frontend()
        self._decode: dict[int, Curve] = {}
        self._dense_s: dict[int, float] = {}  # layers × dense(T), memoised per T
        self._eager_s: dict[int, float] = {}  # layers × eager extra(T), memoised per T
        self._eager_count: dict[int, int] = {}  # eager steps (mixed and decode) per T
        self._head_s: dict[int, float] = {}  # LM head + sampler per sampled rows
        self._decode_totals: dict[int, np.ndarray] = {}
        self._limits = limits
        # Coverage tallies (seconds per lookup kind; see the module doc).
        self._prefill_kind = kind_of(self._prefill)
        self._decode_kind: dict[int, int] = {}
        self._kind_s = [0.0] * NUM_KINDS  # mixed steps: attention and overhead seconds
        self._dense_count: dict[int, int] = {}  # mixed steps: tokens → steps
        self._head_count: dict[int, int] = {}  # mixed steps: LM-head rows → steps
        self._decode_steps: dict[int, list] = {}  # width → [steps, seconds], single steps
        # Prefill factor − 1 on the prefill rows' token share of the dense work (`scale`;
        # 0.0: none), and per T the dense multiples it added, for the coverage tallies.
        self._prefill_extra = 0.0
        self._prefill_dense: dict[int, float] = {}
        self.priced_run_steps: dict[int, int] = {}  # width → decode-run steps priced
        # Which parts of `op_times_s` count as run time: a proposer's passes skip the
        # overhead; under PP only stage 0 pays it and the last stage the LM head.
        self.tally_overhead = self.tally_head = True
        self._decode_curve(1)  # eagerly, so the lookup log shows how decode is answered

    # -- CostModel ------------------------------------------------------------------------
    def step_time_s(self, batch: Batch) -> float:
        n = batch.num_seqs
        if batch.num_batched_tokens == n == batch.num_sampled:  # pure decode: shared path
            context = sum(batch.num_context_tokens)
            t = float(self._decode_times_s(n, context, 1)[0])
            tally = self._decode_steps.get(n)
            if tally is None:
                self._decode_steps[n] = [1, t]
            else:
                tally[0] += 1
                tally[1] += t
            return t
        return sum(self.op_times_s(batch).values())

    def decode_run_times_s(
        self, num_seqs: int, sum_context_tokens: int, num_steps: int
    ) -> list[float] | np.ndarray:
        """The run's step times: a float64 array from `NUMPY_RUN` steps on (`CostModel`),
        else a list."""
        runs = self.priced_run_steps
        runs[num_seqs] = runs.get(num_seqs, 0) + num_steps
        times = self._decode_times_s(num_seqs, sum_context_tokens, num_steps)
        return times if num_steps >= NUMPY_RUN else times.tolist()

    def _decode_times_s(self, num_seqs: int, sum_context_tokens: int, num_steps: int) -> np.ndarray:
        # Mean KV length of step j: (Σ context + b·(j+1)) / b, exact integers over b, so a
        # step priced alone or inside a run gets the same float.
        numerators = sum_context_tokens + num_seqs * np.arange(1, num_steps + 1)
        return np.interp(numerators / num_seqs, self._kv_grid, self._decode_total(num_seqs))

    def _decode_total(self, num_seqs: int) -> np.ndarray:
        """Whole decode-step time of `num_seqs` requests vs mean KV length, on the KV grid."""
        total = self._decode_totals.get(num_seqs)
        if total is None:
            fixed = self._dense_time(num_seqs) + self._head_time(num_seqs)
            if num_seqs > self._graph_max_tokens:  # too wide to replay from a graph
                fixed += self._eager_time(num_seqs)
            overhead = self._overhead_s(num_seqs, 0, 0)
            attn = self._layers * self._decode_curve(num_seqs).t_grid
            total = self._decode_totals[num_seqs] = fixed + overhead + attn
        return total

    def op_times_s(self, batch: Batch) -> dict[str, float]:
        t = batch.num_batched_tokens
        decode_kv: list[int] = []
        prefill_attn = 0.0
        num_prefill = num_prefill_tokens = 0
        max_decode_q = 1 + batch.draft_k  # speculative verify rows price as decode
        rows = batch.num_sampled + batch.num_spec_tokens  # LM head: one per draft verified
        for q, c in zip(batch.num_new_tokens, batch.num_context_tokens, strict=True):
            if q <= max_decode_q:
                decode_kv.append(c + q)
            else:
                prefill_attn += float(self._prefill(np.sqrt(q * q + 2.0 * q * c)))
                num_prefill += 1
                num_prefill_tokens += q
        decode_attn = 0.0
        kinds, counts = self._kind_s, self._dense_count
        counts[t] = counts.get(t, 0) + 1
        dense = self._dense_time(t)
        if t > self._graph_max_tokens or (num_prefill and not self._prefill_in_graph):
            dense += self._eager_time(t)
            self._eager_count[t] = self._eager_count.get(t, 0) + 1
        if self._prefill_extra and num_prefill_tokens:  # a prefill factor (cost/perturb.py)
            extra = self._prefill_extra * num_prefill_tokens / t
            dense *= 1.0 + extra
            self._prefill_dense[t] = self._prefill_dense.get(t, 0.0) + extra
        if decode_kv:
            b = len(decode_kv)
            decode_attn = float(self._decode_curve(b)(sum(decode_kv) / b))
            kinds[self._decode_kind[b]] += self._layers * decode_attn
        if num_prefill:
            kinds[self._prefill_kind] += self._layers * prefill_attn
        if rows and self.tally_head:
            counts = self._head_count
            counts[rows] = counts.get(rows, 0) + 1
        overhead = self._overhead_s(batch.num_seqs, num_prefill, num_prefill_tokens)
        if self.tally_overhead:
            kinds[OVERHEAD] += overhead
        return {
            "dense_layers": dense,
            "attention": self._layers * (decode_attn + prefill_attn),
            "lm_head_sampler": self._head_time(rows) if rows else 0.0,
            "overhead": overhead,
        }

    # -- coverage ---------------------------------------------------------------------------
    def coverage_s(self, decode_runs: dict[int, tuple[float, float]] | None = None) -> np.ndarray:
        """Seconds priced per lookup kind (`coverage.KINDS`, then overhead): the mixed
        steps (`op_times_s`), plus the pure-decode steps, single (tallied here) and in runs
        (`decode_runs`: width → (steps, seconds) that ran, from the run record)."""
        total = np.array(self._kind_s)
        total += self._layers * _kind_sums(self._dense_count, self._t_grid, self._dense_kinds)
        total += self._layers * _kind_sums(self._prefill_dense, self._t_grid, self._dense_kinds)
        if self._eager_count:
            xs = np.fromiter(self._eager_count, dtype=float)
            n = np.fromiter(self._eager_count.values(), dtype=float)
            total[self._eager_kind] += (
                self._layers * np.interp(xs, self._t_grid, self._eager_extra) @ n
            )
        total += _kind_sums(self._head_count, self._b_grid, self._head_kinds)
        widths: dict[int, list[float]] = {b: list(v) for b, v in self._decode_steps.items()}
        for b, (k, sec) in (decode_runs or {}).items():
            acc = widths.setdefault(b, [0, 0.0])
            acc[0] += k
            acc[1] += sec
        for b, (k, sec) in widths.items():
            # Every term of a decode step of b requests but its attention is fixed by b.
            fixed = self._layers * _kind_sums({b: 1}, self._t_grid, self._dense_kinds)
            if b > self._graph_max_tokens:
                fixed[self._eager_kind] += self._eager_time(b)
            fixed += _kind_sums({b: 1}, self._b_grid, self._head_kinds)
            fixed[OVERHEAD] += self._overhead_s(b, 0, 0)
            total += k * fixed
            self._decode_curve(b)
            total[self._decode_kind[b]] += max(sec - k * float(fixed.sum()), 0.0)
        return total

    def scale(self, m: OpMultipliers) -> None:
        """Scale the priced grids by op class (cost-model uncertainty, `cost/perturb.py`);
        called once, by the factory, before the model prices anything. Decode curves built
        later are scaled as they are built (`_decode_curve`). The lookup log keeps the
        table's own values. The prefill factor (perturb.py's split) scales the prefill
        attention grid here and the prefill rows' token share of the dense work per step
        (`op_times_s`); pure-decode steps have no prefill part."""
        if self._multipliers is not None:
            raise ValueError("a cost model is scaled at most once")
        self._multipliers = m
        self._decode = {b: _scaled(c, m.attention) for b, c in self._decode.items()}
        self._decode_totals.clear()
        self._dense_s.clear()
        self._head_s.clear()
        self._dense = _scaled(self._dense, m.dense)
        self._dense_kinds *= m.dense
        self._eager_extra = self._eager_extra * m.dense
        self._eager_s.clear()
        self._head = _scaled(self._head, m.lm_head)
        self._head_kinds *= m.lm_head
        self._prefill = _scaled(self._prefill, m.attention * m.prefill)
        self._prefill_extra = m.prefill - 1.0
        fit, k = self._overhead_fit, m.overhead
        self._overhead_fit = replace(
            fit, fixed_s=fit.fixed_s * k, per_seq_s=fit.per_seq_s * k,
            per_prefill_seq_s=fit.per_prefill_seq_s * k,
            per_prefill_token_s=fit.per_prefill_token_s * k,
        )  # fmt: skip

    @property
    def overhead_fit(self) -> OverheadFit:
        """The step overhead terms this model prices (measured rows or the default)."""
        return self._overhead_fit

    def _overhead_s(self, num_seqs: int, num_prefill: int, num_prefill_tokens: int) -> float:
        fit = self._overhead_fit
        return (fit.fixed_s + fit.per_seq_s * num_seqs + fit.per_prefill_seq_s * num_prefill
                + fit.per_prefill_token_s * num_prefill_tokens)  # fmt: skip

    def _overhead(self, params: RooflineParams, source: str, rows_override: bool) -> OverheadFit:
        """Step overhead fitted to the table's measured `step_overhead` rows when it has
        them (`infsim.cost.overhead`) and the scenario does not set it, else the resolved
        default (fixed, per sequence; `infsim.scenario.host_overhead`)."""
        rows = self.lookup.select("step_overhead") if rows_override else None
        self.overhead_measured = rows is not None and rows["batch_size"].nunique() >= 2
        if not self.overhead_measured:
            fit = OverheadFit(params.step_overhead_s, params.per_seq_overhead_s)
            self.lookup.log.entries.append(
                {"op": "step_overhead", "shape": fit.describe(), "method": "default",
                 "measured_range": "-", "used_range": f"1..{self._b_grid[-1]:g}",
                 "extrapolated": False, "note": source}
            )  # fmt: skip
            return fit
        fit = fit_overhead(rows)
        b = rows["batch_size"].to_numpy(float)
        self.lookup.log.entries.append(
            {"op": "step_overhead", "shape": fit.describe(),
             "method": "measured", "measured_range": f"{b.min():g}..{b.max():g} seqs",
             "used_range": f"1..{self._b_grid[-1]:g}", "extrapolated": False,
             "note": "fitted to the table's step_overhead rows"}
        )  # fmt: skip
        # A prefill chunk may cost less than a decode sequence (a decode step also streams
        # its tokens out), so its term may be negative, down to cancelling fixed + one
        # sequence; the others are costs and stay ≥ 0.
        fixed, per_seq = max(fit.fixed_s, 0.0), max(fit.per_seq_s, 0.0)
        return OverheadFit(fixed, per_seq, max(fit.per_prefill_seq_s, -(fixed + per_seq)),
                           max(fit.per_prefill_token_s, 0.0))  # fmt: skip

    def _log_frontend(self) -> None:
        """List the table's fitted front-end line in the lookup log (`infsim calibrate
        report`); the API server itself is priced by infsim.frontend from the same line."""
        rows = self.lookup.select("frontend")
        line = fitted_request_path(rows)
        if line is None:
            return
        tokens = rows["num_tokens"].to_numpy(float)
        self.lookup.log.entries.append(
            {"op": "frontend", "shape": f"{line[0] * 1e3:.3f} ms + {line[1] * 1e6:.3f} µs/token",
             "method": "measured", "measured_range": f"{tokens.min():g}..{tokens.max():g}",
             "used_range": "per request", "extrapolated": False}
        )  # fmt: skip

    def _dense_time(self, num_tokens: int) -> float:
        t = self._dense_s.get(num_tokens)
        if t is None:
            t = self._dense_s[num_tokens] = self._layers * float(self._dense(num_tokens))
        return t

    def _eager_time(self, num_tokens: int) -> float:
        """What a step of `num_tokens` run eagerly adds over the graph-priced dense work
        (the eager collectives' extra time, all layers)."""
        t = self._eager_s.get(num_tokens)
        if t is None:
            extra = float(np.interp(num_tokens, self._t_grid, self._eager_extra))
            t = self._eager_s[num_tokens] = self._layers * extra
        return t

    def _head_time(self, num_rows: int) -> float:
        t = self._head_s.get(num_rows)
        if t is None:
            t = self._head_s[num_rows] = float(self._head(num_rows))
        return t

    # -- construction -----------------------------------------------------------------------
    @property
    def _heads_label(self) -> str:
        h, kvh, d = self._heads
        return f"heads={h} kv_heads={kvh} head_dim={d}"

    def _gemm_roof(self, m: np.ndarray, n: float, k: float) -> np.ndarray:
        s, r = self.shape, self._roof
        flops = 2.0 * m * n * k / r._flops
        nbytes = (n * k * s.weight_bytes_per_param + m * (n + k) * ACTIVATION_BYTES) / r._bw
        return np.maximum(flops, nbytes)

    def _dense_layer_curve(self, dtype: str) -> Curve:
        s, grid, log = self.shape, self._t_grid, self.lookup.log
        h, d, tp = s.hidden_size, s.head_dim, s.tensor_parallel
        q_out, kv_out = s.num_heads_per_gpu * d, s.num_kv_heads_per_gpu * d
        inter = (s.moe_intermediate_size * s.num_experts_per_tok if s.num_experts
                 else s.intermediate_size) / tp  # fmt: skip
        shapes = {"qkv_proj": (q_out + 2 * kv_out, h), "o_proj": (h, q_out)}
        if not s.num_experts:
            shapes |= {"gate_up_proj": (2 * inter, h), "down_proj": (h, inter)}
        total = np.zeros_like(grid)
        kinds = self._dense_kinds
        for name, (n, k) in shapes.items():
            curve = self.lookup.gemm(n, k, dtype, grid, self._gemm_roof)
            log.add("gemm", f"{name} n={n:g} k={k:g} {dtype}", curve, (1, grid[-1]))
            total += curve.t_grid
            kinds[kind_of(curve)] += curve.t_grid
        if s.num_experts:
            dims = (h, s.moe_intermediate_size, s.num_experts, s.num_experts_per_tok, tp)
            roof = np.vectorize(lambda t: self._roof._mlp_s(int(t)))
            moe = self.lookup.moe(dims, dtype, grid, roof)
            log.add("moe", "hidden={} inter={} experts={} topk={} tp={}".format(*dims), moe,
                    (1, grid[-1]))  # fmt: skip
            router = self.lookup.gemm(s.num_experts, h, dtype, grid, self._gemm_roof)
            total += moe.t_grid + router.t_grid
            kinds[kind_of(moe)] += moe.t_grid
            kinds[kind_of(router)] += router.t_grid
        total += self._per_token(grid)
        if tp > 1:
            nbytes = grid * h * ACTIVATION_BYTES
            roof = lambda b: np.vectorize(self._roof._all_reduce_s)(b)  # noqa: E731
            ar = self.lookup.collective("all_reduce", tp, nbytes, roof, mode="graph")
            eager = self.lookup.collective("all_reduce", tp, nbytes, roof, mode="eager")
            log.add("all_reduce", f"tp={tp} (CUDA graph)", ar, (nbytes[0], nbytes[-1]))
            if not np.array_equal(eager.t_grid, ar.t_grid):
                log.add("all_reduce", f"tp={tp} (eager)", eager, (nbytes[0], nbytes[-1]))
            per_layer = 1 if s.expert_parallel > 1 else 2
            total += per_layer * ar.t_grid
            kinds[kind_of(ar)] += per_layer * ar.t_grid
            # Measured eager rows can dip under the graph ones at a size (another
            # algorithm timed); a step is never faster for running eagerly.
            self._eager_extra = per_layer * np.maximum(eager.t_grid - ar.t_grid, 0.0)
            self._eager_kind = kind_of(eager)
        if s.expert_parallel > 1:
            total += self._expert_parallel_comm(grid)
        return Curve(grid, total, (1, grid[-1]), "sum")

    def _expert_parallel_comm(self, grid: np.ndarray) -> np.ndarray:
        """One MoE layer's EP traffic (see roofline.py): dispatch + combine all-to-all
        (measured `all_to_all` rows vs one rank's send bytes when the table has them),
        the all-gather over EP and the all-reduce over TP/EP (α–β)."""
        s, link = self.shape, self._roof.link
        ep, moe_tp = s.expert_parallel, s.tensor_parallel // s.expert_parallel
        hidden = grid * s.hidden_size * ACTIVATION_BYTES
        routed = hidden * s.num_experts_per_tok / ep
        a2a = self.lookup.collective(
            "all_to_all", ep, routed, np.vectorize(lambda b: all_to_all_s(b, ep, link))
        )
        self.lookup.log.add("all_to_all", f"ep={ep}", a2a, (routed[0], routed[-1]))
        rest = [all_gather_s(h, ep, link) + all_reduce_s(r, moe_tp, link)
                for h, r in zip(hidden, routed, strict=True)]  # fmt: skip
        self._dense_kinds[kind_of(a2a)] += 2 * a2a.t_grid
        self._dense_kinds[ROOFLINE] += np.asarray(rest)
        return 2 * a2a.t_grid + np.asarray(rest)

    def _per_token(self, grid: np.ndarray) -> np.ndarray:
        s, log = self.shape, self.lookup.log
        roof = lambda t: t * 8 * s.hidden_size * ACTIVATION_BYTES / self._roof._bw  # noqa: E731
        curves = [self.lookup.sized(op, "num_tokens", grid, roof) for op in PER_TOKEN_OPS]
        measured = [c for c in curves if c is not None]
        if not measured:
            curve = Curve(grid, roof(grid), (np.inf, -np.inf), "roofline")
            log.add("elementwise", "norms, rotary, activation, residual", curve, (1, grid[-1]))
            self._dense_kinds[ROOFLINE] += curve.t_grid
            return curve.t_grid
        for c in measured:
            log.add("per_token", "measured per-token ops", c, (1, grid[-1]))
            self._dense_kinds[kind_of(c)] += c.t_grid
        return np.sum([c.t_grid for c in measured], axis=0)

    def _head_curve(self, dtype: str) -> Curve:
        s, grid, log = self.shape, self._b_grid, self.lookup.log
        n, k = s.vocab_size / s.tensor_parallel, s.hidden_size
        measured = self.lookup.sized("lm_head", "batch_size", grid,
                                     lambda b: self._gemm_roof(b, n, k))  # fmt: skip
        head = measured or self.lookup.gemm(n, k, dtype, grid, self._gemm_roof)
        log.add("lm_head", f"n={n:g} k={k:g}", head, (1, grid[-1]))
        self._head_kinds[kind_of(head)] += head.t_grid
        sampler = self.lookup.sized("sampler", "batch_size", grid, lambda b: 1e-6 * b)
        if sampler is None:
            return head
        log.add("sampler", "per sequence", sampler, (1, grid[-1]))
        self._head_kinds[kind_of(sampler)] += sampler.t_grid
        return Curve(grid, head.t_grid + sampler.t_grid, (1, grid[-1]), "sum")

    def _decode_curve(self, batch: int) -> Curve:
        curve = self._decode.get(batch)
        if curve is None:
            curve = self.lookup.attention_decode(
                self._heads, self._kv_dtype, batch, self._kv_grid, self._decode_roof
            )
            if not self._decode:
                self.lookup.log.add("attention_decode", self._heads_label, curve,
                                    (1, self._limits.max_model_len))  # fmt: skip
            if self._multipliers is not None:
                curve = _scaled(curve, self._multipliers.attention)
            self._decode[batch] = curve
            self._decode_kind[batch] = kind_of(curve)
        return curve

    def _decode_roof(self, b: float | np.ndarray, kv: float | np.ndarray) -> np.ndarray:
        r, (h, kvh, d) = self._roof, self._heads
        flops = 4.0 * b * kv * h * d / r._flops
        nbytes = b * kv * 2 * kvh * d * self.shape.kv_bytes_per_element / r._bw
        return np.maximum(flops, nbytes)

    def _prefill_roof(self, isl: np.ndarray) -> np.ndarray:
        r, (h, kvh, d) = self._roof, self._heads
        flops = 4.0 * isl * (isl + 1) / 2 * h * d / r._flops
        nbytes = isl * 2 * kvh * d * self.shape.kv_bytes_per_element / r._bw
        return np.maximum(flops, nbytes)


def _scaled(curve: Curve, factor: float) -> Curve:
    return replace(curve, t_grid=curve.t_grid * factor)


def _kind_sums(counts: dict[int, int], grid: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """Σ over sizes x of counts[x] · kinds[:, x] (each row interpolated on `grid`)."""
    if not counts:
        return np.zeros(len(kinds))
    xs = np.fromiter(counts, dtype=float, count=len(counts))
    n = np.fromiter(counts.values(), dtype=float, count=len(counts))
    return np.array([np.interp(xs, grid, row) @ n for row in kinds])
