"""Issue 18: steps the engine runs outside a CUDA graph pay the eager all-reduce rows.

AIConfigurator times vLLM's all-reduce both replayed in a CUDA graph (`vllm_graph`) and
called eagerly (`vllm_eager`); a prefill step of vLLM V0 (and any step above the capture
size) runs eagerly, so its all-reduces are priced from the eager rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from infsim import api
from infsim.core.batch import Batch
from infsim.cost.factory import build_cost_model
from infsim.cost.lookup import CalibrationLookup
from infsim.scenario.load import validate_scenario

MIB = 1 << 20


def _rows(variants: dict[str, float]) -> pd.DataFrame:
    """all_reduce rows on 8 devices at 1 and 4 MiB: time = base × size / 1 MiB."""
    rows = [{"op": "all_reduce", "num_devices": 8, "message_bytes": float(b), "tp": np.nan,
             "variant": v, "time_s": t * b / MIB} for v, t in variants.items()
            for b in (MIB, 4 * MIB)]  # fmt: skip
    return pd.DataFrame(rows)


def test_mode_keeps_the_engines_own_rows_of_that_mode():
    lookup = CalibrationLookup(_rows({"nccl": 2e-5, "vllm_graph": 1e-5, "vllm_eager": 4e-5}))
    grid = np.array([float(MIB), 4.0 * MIB])
    roof = lambda b: b * 0  # noqa: E731  (never used: both sizes are measured)
    graph = lookup.collective("all_reduce", 8, grid, roof, mode="graph")
    eager = lookup.collective("all_reduce", 8, grid, roof, mode="eager")
    fastest = lookup.collective("all_reduce", 8, grid, roof)
    np.testing.assert_allclose(graph.t_grid, [1e-5, 4e-5])
    np.testing.assert_allclose(eager.t_grid, [4e-5, 16e-5])  # not NCCL's faster 2e-5
    np.testing.assert_allclose(fastest.t_grid, [1e-5, 4e-5])  # no mode: fastest variant


def test_a_table_without_modes_prices_both_modes_alike():
    lookup = CalibrationLookup(_rows({"nccl": 2e-5}))
    grid = np.array([float(MIB), 4.0 * MIB])
    graph = lookup.collective("all_reduce", 8, grid, lambda b: b * 0, mode="graph")
    eager = lookup.collective("all_reduce", 8, grid, lambda b: b * 0, mode="eager")
    np.testing.assert_array_equal(graph.t_grid, eager.t_grid)


def _config(tp: int, version: str | None = None):
    version_item = {"version": version} if version else {}
    raw = {"model": "llama-3.1-70b", "hardware": {"gpu": "h100-sxm"},
           "calibration": "h100-vllm-0.19", "deployment": {"tensor_parallel": tp},
           "engine": {**version_item, "max_num_seqs": 256, "max_num_batched_tokens": 8192,
                      "max_model_len": 8192, "enable_chunked_prefill": False},
           "workload": {"synthetic": {"num_requests": 1, "arrival": {
               "kind": "poisson", "rate_per_s": 1}, "prompt_tokens": {
               "kind": "fixed", "value": 1}, "output_tokens": {
               "kind": "fixed", "value": 1}}}}  # fmt: skip
    resolved, _ = api.prepare(validate_scenario(raw, "test"), ".")
    return resolved.replica()


def _step(prompt: int = 0, decodes: int = 0, context: int = 500) -> Batch:
    q = ([prompt] if prompt else []) + [1] * decodes
    c = ([0] if prompt else []) + [context] * decodes
    return Batch(requests=[None] * len(q), num_new_tokens=q, num_context_tokens=c,
                 num_batched_tokens=sum(q), num_sampled=len(q))  # fmt: skip


def _table_us(cfg, variant: str, nbytes: float) -> float:
    rows = cfg.calibration_rows
    sel = rows[(rows["op"] == "all_reduce") & (rows["num_devices"] == cfg.tensor_parallel)
               & (rows["variant"] == variant) & (rows["message_bytes"] == nbytes)]  # fmt: skip
    return float(sel["time_s"].min()) * 1e6


@pytest.fixture(scope="module")
def tp8():
    return _config(8)


def test_v0_prefill_pays_the_eager_rows_hand_computed(tp8):
    """64 prompt tokens × 8192 hidden × 2 B = 1 MiB, a measured size: a V0 prefill step
    costs 80 layers × 2 all-reduces × (eager − graph) more (table: 42.2 − 14.8 µs)."""
    graph = build_cost_model(tp8)
    v0 = build_cost_model(replace(tp8, prefill_in_cuda_graph=False, cuda_graph_max_tokens=256))
    step = _step(prompt=64)
    extra = sum(v0.op_times_s(step).values()) - sum(graph.op_times_s(step).values())
    per_ar = _table_us(tp8, "vllm_eager", MIB) - _table_us(tp8, "vllm_graph", MIB)
    assert per_ar > 20  # µs: the eager call's copy and launch
    assert extra == pytest.approx(80 * 2 * per_ar * 1e-6, rel=0.03)


def test_decode_steps_stay_graph_priced(tp8):
    graph = build_cost_model(tp8)
    v0 = build_cost_model(replace(tp8, prefill_in_cuda_graph=False, cuda_graph_max_tokens=256))
    step = _step(decodes=32)
    assert v0.step_time_s(step) == graph.step_time_s(step)
    assert v0.decode_run_times_s(32, 32 * 500, 3) == graph.decode_run_times_s(32, 32 * 500, 3)


def test_steps_above_the_capture_size_run_eagerly_in_any_engine(tp8):
    small = build_cost_model(replace(tp8, cuda_graph_max_tokens=4096))
    default = build_cost_model(tp8)  # V1: graphs up to 512 tokens
    for tokens, eager in ((256, False), (2048, True)):
        step = _step(prompt=tokens)
        a, b = sum(default.op_times_s(step).values()), sum(small.op_times_s(step).values())
        assert (a > b) is eager, tokens
    # a decode batch wider than the capture size too
    wide = build_cost_model(replace(tp8, cuda_graph_max_tokens=16))
    assert wide.step_time_s(_step(decodes=32)) > default.step_time_s(_step(decodes=32))


def test_eager_extra_is_never_negative_and_grows_with_the_prompt(tp8):
    v0 = build_cost_model(replace(tp8, prefill_in_cuda_graph=False))
    graph = build_cost_model(replace(tp8, cuda_graph_max_tokens=1 << 30))  # never eager
    extras = []
    for tokens in (16, 64, 256, 1024, 4096):
        step = _step(prompt=tokens)
        extras.append(sum(v0.op_times_s(step).values()) - sum(graph.op_times_s(step).values()))
    assert min(extras) >= 0
    assert extras[-1] > extras[0]


@pytest.mark.parametrize(
    ("version", "max_tokens", "prefill_in_graph"),
    [("0.6.0", 256, False), ("0.7.3", 256, False), ("0.8.0", 512, True), (None, 512, True)],
)
def test_resolution_sets_the_releases_graph_policy(version, max_tokens, prefill_in_graph):
    cfg = _config(2, version)
    assert cfg.cuda_graph_max_tokens == max_tokens
    assert cfg.prefill_in_cuda_graph is prefill_in_graph
