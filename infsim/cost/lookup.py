"""Per-op cost curves for one model shape, built from a calibration table.

`CalibrationLookup` answers "how long does this op take at these sizes" as a `Curve`
over the size the simulation varies (tokens m for a GEMM, KV length for decode attention,
prompt length for prefill attention, bytes for a collective), for the fixed shape the
model and TP give. Inside the measured grid it interpolates in log space — along the
curve (log-log) and between neighbouring measured shapes (e.g. GEMM n and k, decode batch
sizes); outside, it scales by the roofline (see `curves.py`); with no usable rows it
falls back to the roofline itself. Every curve records which of these it used, for
`infsim calibrate report`, the run-time fallback warnings and summary.json's
`calibration.coverage` (`infsim.cost.coverage`).

Before giving up on a table, two substitutions are tried:

* dtype: float16 is served from bfloat16 rows (and back) when the GPU's peak FLOP/s of
  the two are equal (`dtype_substitutes`, built by the factory from the catalog): same
  bytes, same tensor-core rate. Covers GEMMs, MoE and the KV dtype of attention rows.
* attention heads: decode attention reads the KV cache once per step, so its time is
  proportional to kv_heads × head_dim (same batch, KV length and dtype); a head
  configuration the table lacks is priced from the nearest measured one times that
  ratio (method "scaled-shape"). Prefill attention is FLOP-bound: num_heads × head_dim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from infsim.cost.curves import Curve, bracket, log_blend, loglog_curve

if TYPE_CHECKING:
    import pandas as pd

RoofFn = Callable[..., np.ndarray]


@dataclass
class LookupLog:
    """Which lookups a cost model made and how each was answered."""

    entries: list[dict] = field(default_factory=list)

    def add(self, op: str, shape: str, curve: Curve, used: tuple[float, float]) -> None:
        lo, hi = curve.measured
        self.entries.append(
            {
                "op": op,
                "shape": shape,
                "method": curve.method,
                "measured_range": f"{lo:g}..{hi:g}" if curve.method != "roofline" else "-",
                "used_range": f"{used[0]:g}..{used[1]:g}",
                "extrapolated": curve.method == "roofline" or used[0] < lo or used[1] > hi,
                "note": curve.note,
            }
        )


class CalibrationLookup:
    """Curves for one device's table. `rows` is the ops table as a DataFrame."""

    def __init__(
        self,
        rows: pd.DataFrame,
        log: LookupLog | None = None,
        tensor_parallel: int = 1,
        dtype_substitutes: dict[str, str] | None = None,
    ) -> None:
        self.rows = rows
        self.log = log or LookupLog()
        self.tensor_parallel = tensor_parallel
        # dtype → dtype whose rows may stand in for it (equal peak rates, equal bytes)
        self.dtype_substitutes = dict(dtype_substitutes or {})
        self._by_op = {op: g for op, g in rows.groupby("op")}  # noqa: C416  (GroupBy is no mapping)
        self._nearest: dict[tuple, tuple[tuple[int, int, int], float] | None] = {}
        self._attention: dict[tuple, tuple] = {}  # (op, kv dtype, heads) → _attention_rows

    # -- GEMM ---------------------------------------------------------------------------
    def gemm(self, n: float, k: float, dtype: str, grid: np.ndarray, roof: RoofFn) -> Curve:
        """t(m) of an [m×k]·[k×n] GEMM; bilinear in (log n, log k) between measured shapes."""
        rows, note = self.select_substituted("gemm", dtype=dtype)
        if rows is None:
            return self._roofline(grid, lambda m: roof(m, n, k))
        n0, n1 = bracket(rows["n"].to_numpy(), n)
        k0, k1 = bracket(rows["k"].to_numpy(), k)
        corners = rows[rows["n"].isin((n0, n1)) & rows["k"].isin((k0, k1))]
        by_nk = {nk: g for nk, g in corners.groupby(["n", "k"])}  # noqa: C416

        def corner(nn: float, kk: float) -> np.ndarray | None:
            g = by_nk.get((nn, kk))
            if g is None:
                return None
            pts = g.groupby("m")["time_s"].min()  # the engine runs its fastest kernel
            t = loglog_curve(pts.index.to_numpy(), pts.to_numpy(), grid, lambda m: roof(m, nn, kk))
            return t * roof(grid, n, k) / roof(grid, nn, kk)  # re-shape to the target n, k

        corners = [corner(a, b) for a in (n0, n1) for b in (k0, k1)]
        if any(c is None for c in corners):
            all_shapes = {nk: g for nk, g in rows.groupby(["n", "k"])}  # noqa: C416
            return self._nearest_gemm(all_shapes, n, k, grid, roof, note)
        t_k0 = log_blend(corners[0], corners[2], n0, n1, n)
        t_k1 = log_blend(corners[1], corners[3], n0, n1, n)
        t = log_blend(t_k0, t_k1, k0, k1, k)
        exact = n0 == n1 == n and k0 == k1 == k
        ms = rows["m"].to_numpy()
        method = "measured" if exact else "interpolated-shape"
        if not (n0 <= n <= n1 and k0 <= k <= k1):
            method = "scaled-shape"
        return Curve(grid, t, (float(ms.min()), float(ms.max())), method, note)

    def _nearest_gemm(self, by_nk, n, k, grid, roof, note: str = "") -> Curve:
        nn, kk = min(by_nk, key=lambda nk: abs(np.log(nk[0] / n)) + abs(np.log(nk[1] / k)))
        pts = by_nk[(nn, kk)].groupby("m")["time_s"].min()
        t = loglog_curve(pts.index.to_numpy(), pts.to_numpy(), grid, lambda m: roof(m, nn, kk))
        t = t * roof(grid, n, k) / roof(grid, nn, kk)
        ms = pts.index.to_numpy()
        return Curve(grid, t, (float(ms.min()), float(ms.max())), "scaled-shape", note)

    # -- attention ----------------------------------------------------------------------
    def attention_decode(
        self, heads: tuple[int, int, int], kv_dtype: str, batch: int, grid: np.ndarray,
        roof: RoofFn,
    ) -> Curve:  # fmt: skip
        """t(kv_len) of one layer's decode attention for `batch` sequences. A head
        configuration the table lacks: the nearest measured one × the ratio of KV bytes
        read (kv_heads × head_dim), method "scaled-shape"."""
        rows, note, factor = self._attention_rows(
            "attention_decode", heads, kv_dtype, "KV bytes",
            work=lambda h, kvh, d: kvh * d, second=lambda h, kvh, d: h * d,
        )  # fmt: skip
        if rows is None:
            return self._roofline(grid, lambda kv: roof(batch, kv))
        b0, b1 = bracket(rows["batch_size"].to_numpy(), batch)

        def at(b: float) -> np.ndarray:
            pts = rows[rows["batch_size"] == b].groupby("kv_len")["time_s"].min()
            t = loglog_curve(pts.index.to_numpy(), pts.to_numpy(), grid, lambda kv: roof(b, kv))
            return t * roof(batch, grid) / roof(b, grid)

        t = log_blend(at(b0), at(b1), b0, b1, batch)
        kvs = rows["kv_len"].to_numpy()
        method = "measured" if b0 == b1 == batch else "interpolated-shape"
        if factor is not None:
            t, method = t * factor, "scaled-shape"
        return Curve(grid, t, (float(kvs.min()), float(kvs.max())), method, note)

    def attention_prefill(
        self, heads: tuple[int, int, int], kv_dtype: str, grid: np.ndarray, roof: RoofFn
    ) -> Curve:
        """t(prompt length) of one layer's causal prefill attention, one sequence. A head
        configuration the table lacks: the nearest measured one × the ratio of FLOPs
        (num_heads × head_dim), method "scaled-shape"."""
        fresh = lambda r: r[r["query_len"] == r["kv_len"]]  # noqa: E731  (no cached context)
        rows, note, factor = self._attention_rows(
            "attention_prefill", heads, kv_dtype, "FLOPs", fresh,
            work=lambda h, kvh, d: h * d, second=lambda h, kvh, d: kvh * d,
        )  # fmt: skip
        if rows is None:
            return self._roofline(grid, roof)
        rows = fresh(rows)
        rows = rows[rows["batch_size"] == rows["batch_size"].min()]
        b = float(rows["batch_size"].iloc[0])
        pts = rows.groupby("query_len")["time_s"].min()
        t = loglog_curve(pts.index.to_numpy(), pts.to_numpy() / b, grid, roof)
        qs = pts.index.to_numpy()
        method = "measured"
        if factor is not None:
            t, method = t * factor, "scaled-shape"
        return Curve(grid, t, (float(qs.min()), float(qs.max())), method, note)

    def _attention_rows(
        self,
        op: str,
        heads: tuple[int, int, int],
        kv_dtype: str,
        unit: str,
        usable: Callable[[pd.DataFrame], pd.DataFrame] = lambda r: r,
        *,
        work: Callable[[int, int, int], float],
        second: Callable[[int, int, int], float],
    ) -> tuple[pd.DataFrame | None, str, float | None]:
        """(rows, note, factor) for `heads` = (num_heads, kv_heads, head_dim): its own rows
        (factor None), else those of the measured configuration nearest in `work` (the size
        the op's time is proportional to), then in `second`, then in head_dim; factor =
        work(heads) / work(that configuration). Only configurations with `usable` rows
        count."""
        key = (op, kv_dtype, heads)
        found = self._attention.get(key)
        if found is None:
            found = self._attention[key] = self._find_attention_rows(
                op, heads, kv_dtype, unit, usable, work, second
            )
        return found

    def _find_attention_rows(self, op, heads, kv_dtype, unit, usable, work, second):
        rows, note = self.select_substituted(op, kv_dtype=kv_dtype)
        if rows is None:
            return None, "", None
        cols = ["num_heads", "num_kv_heads", "head_dim"]
        key = (op, kv_dtype, heads)
        if key not in self._nearest:
            configs = usable(rows)[cols].dropna().drop_duplicates()
            found = [tuple(int(v) for v in c) for c in configs.itertuples(index=False)]
            best = None
            if heads in found:
                best = (heads, 1.0)
            elif found:
                target, target2 = work(*heads), second(*heads)

                def distance(c: tuple[int, int, int]) -> tuple[float, float, int]:
                    off = abs(np.log(work(*c) / target)), abs(np.log(second(*c) / target2))
                    return round(off[0], 9), round(off[1], 9), abs(c[2] - heads[2])

                src = min(found, key=distance)
                best = (src, target / work(*src))
            self._nearest[key] = best
        best = self._nearest[key]
        if best is None:
            return None, "", None
        (h0, kvh0, d0), factor = best
        rows = rows[(rows["num_heads"] == h0) & (rows["num_kv_heads"] == kvh0)
                    & (rows["head_dim"] == d0)]  # fmt: skip
        if (h0, kvh0, d0) == tuple(heads):
            return rows, note, None
        scaled = f"×{factor:g} {unit} of heads={h0} kv_heads={kvh0} head_dim={d0}"
        return rows, f"{note}; {scaled}" if note else scaled, factor

    def moe(
        self, dims: tuple[int, int, int, int, int], dtype: str, grid: np.ndarray, roof: RoofFn
    ) -> Curve:
        """t(tokens) of one MoE layer's experts; dims = (hidden, expert inter, experts,
        top-k, TP). Balanced routing is preferred where the table has several routings."""
        hidden, inter, experts, topk, tp = dims
        rows, note = self.select_substituted("moe", dtype=dtype)
        if rows is not None:
            rows = rows[
                (rows["hidden_size"] == hidden) & (rows["inter_size"] == inter)
                & (rows["num_experts"] == experts) & (rows["topk"] == topk)
                & (rows["tp"].fillna(1) == tp)
            ]  # fmt: skip
            balanced = rows["variant"].fillna("").str.endswith("balanced")
            if balanced.any():
                rows = rows[balanced]
        if rows is None or rows.empty:
            return self._roofline(grid, roof)
        pts = rows.groupby("num_tokens")["time_s"].min()
        t = loglog_curve(pts.index.to_numpy(), pts.to_numpy(), grid, roof)
        xs = pts.index.to_numpy()
        return Curve(grid, t, (float(xs.min()), float(xs.max())), "measured", note)

    # -- collectives and small ops ------------------------------------------------------
    def collective(
        self, op: str, num_devices: int, grid: np.ndarray, roof: RoofFn, mode: str | None = None
    ) -> Curve:
        """t(bytes) of a collective: the fastest measured variant per size. `mode` ("graph"
        or "eager"): where the table has rows of the engine's own call timed in that mode
        (`variant` ending in `_graph` / `_eager`, e.g. AIConfigurator's `vllm_graph` and
        `vllm_eager`: vLLM's all-reduce replayed in a CUDA graph and called eagerly), only
        those price it, since that call is what the engine runs (it picks custom
        all-reduce or NCCL by size itself); other variants (e.g. raw `nccl`) stand in only
        where the table has no rows of that mode."""
        rows = self.select(op)
        if rows is not None:
            rows = rows[rows["num_devices"] == num_devices]
        if rows is not None and mode is not None and not rows.empty:
            own = rows[rows["variant"].fillna("").astype(str).str.endswith(f"_{mode}")]
            rows = own if not own.empty else rows
        if rows is None or rows.empty:
            return self._roofline(grid, roof)
        pts = rows.groupby("message_bytes")["time_s"].min()  # fastest algorithm per size
        t = loglog_curve(pts.index.to_numpy(), pts.to_numpy(), grid, roof)
        xs = pts.index.to_numpy()
        return Curve(grid, t, (float(xs.min()), float(xs.max())), "measured")

    def sized(self, op: str, column: str, grid: np.ndarray, roof: RoofFn) -> Curve | None:
        """Per-token or per-sequence op summed over its variants; None when unmeasured."""
        rows = self.select(op)
        if rows is None:
            return None
        per_variant = rows.groupby(["variant", column], dropna=False)["time_s"].median()
        total = per_variant.groupby(level=column).sum()
        t = loglog_curve(total.index.to_numpy(), total.to_numpy(), grid, roof)
        xs = total.index.to_numpy()
        return Curve(grid, t, (float(xs.min()), float(xs.max())), "measured")

    # -- helpers ------------------------------------------------------------------------
    def select(
        self,
        op: str,
        dtype: str | None = None,
        kv_dtype: str | None = None,
        heads: tuple[int, int, int] | None = None,
    ) -> pd.DataFrame | None:
        rows = self._by_op.get(op)
        if rows is None:
            return None
        # Rows measured under this TP degree win (per-rank per-token and per-sequence ops
        # differ between TP degrees); tables that do not record TP are used whole.
        same_tp = rows["tp"] == self.tensor_parallel
        if same_tp.any():
            rows = rows[same_tp]
        if dtype is not None:
            rows = rows[rows["dtype"] == dtype]
        if kv_dtype is not None and rows["kv_dtype"].notna().any():
            rows = rows[rows["kv_dtype"] == kv_dtype]
        if heads is not None:
            h, kvh, d = heads
            rows = rows[
                (rows["num_heads"] == h) & (rows["num_kv_heads"] == kvh) & (rows["head_dim"] == d)
            ]
        return rows if not rows.empty else None

    def select_substituted(
        self, op: str, dtype: str | None = None, kv_dtype: str | None = None
    ) -> tuple[pd.DataFrame | None, str]:
        """`select`, and where it finds nothing for `dtype` / `kv_dtype`, the rows of its
        substitute dtype (`dtype_substitutes`), with a note saying so ("" if none)."""
        rows = self.select(op, dtype=dtype, kv_dtype=kv_dtype)
        if rows is not None:
            return rows, ""
        sub_w, sub_kv = self.dtype_substitutes.get(dtype), self.dtype_substitutes.get(kv_dtype)
        w_note, kv_note = f"{dtype} from {sub_w} rows", f"KV {kv_dtype} from {sub_kv} rows"
        options = []
        if sub_w is not None:
            options.append((sub_w, kv_dtype, w_note))
        if sub_kv is not None:
            options.append((dtype, sub_kv, kv_note))
            if sub_w is not None:
                options.append((sub_w, sub_kv, f"{w_note}, {kv_note}"))
        for w, kv, note in options:
            rows = self.select(op, dtype=w, kv_dtype=kv)
            if rows is not None:
                return rows, note
        return None, ""

    @staticmethod
    def _roofline(grid: np.ndarray, roof: RoofFn) -> Curve:
        return Curve(grid, np.asarray(roof(grid), dtype=float), (np.inf, -np.inf), "roofline")
