"""Prefill steps in the overhead fit: fixed + per sequence (decode) + per prefill chunk +
per prefill token, fitted jointly and priced by the calibrated cost model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from infsim import api
from infsim.calibration.overhead import decode_batch
from infsim.cli import main
from infsim.cost.factory import build_cost_model
from infsim.cost.overhead import OverheadFit, fit_overhead
from infsim.scenario.load import load_scenario

TRUE = OverheadFit(fixed_s=3e-3, per_seq_s=20e-6, per_prefill_seq_s=-1e-3,
                   per_prefill_token_s=8e-6)  # fmt: skip


def _true_overhead(b: int, q: int) -> float:
    prefill = q > 1
    return (TRUE.fixed_s + TRUE.per_seq_s * b + prefill * b
            * (TRUE.per_prefill_seq_s + TRUE.per_prefill_token_s * q))  # fmt: skip


def _rows(shapes: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame({"batch_size": [b for b, _ in shapes],
                         "query_len": [q if q > 1 else np.nan for _, q in shapes],
                         "time_s": [_true_overhead(b, q) for b, q in shapes]})  # fmt: skip


def test_the_fit_recovers_all_four_terms():
    fit = fit_overhead(_rows([(1, 1), (4, 1), (16, 1), (1, 128), (1, 512), (1, 2048)]))
    assert fit.fixed_s == pytest.approx(TRUE.fixed_s)
    assert fit.per_seq_s == pytest.approx(TRUE.per_seq_s)
    assert fit.per_prefill_seq_s == pytest.approx(TRUE.per_prefill_seq_s)
    assert fit.per_prefill_token_s == pytest.approx(TRUE.per_prefill_token_s)
    assert "per prefill token" in fit.describe()


def test_decode_rows_alone_are_the_fixed_plus_per_sequence_line():
    fit = fit_overhead(_rows([(1, 1), (8, 1), (32, 1)]))
    assert (fit.fixed_s, fit.per_seq_s) == (pytest.approx(3e-3), pytest.approx(20e-6))
    assert (fit.per_prefill_seq_s, fit.per_prefill_token_s) == (0.0, 0.0)
    assert fit.describe() == "3.000 ms + 20.0 µs per sequence"


def test_one_prefill_length_cannot_tell_a_per_token_cost():
    fit = fit_overhead(_rows([(1, 1), (8, 1), (1, 512)]))
    assert fit.per_prefill_token_s == 0.0
    # The chunk term takes all of that one prefill step's difference from a decode.
    assert fit.fixed_s + fit.per_seq_s + fit.per_prefill_seq_s == pytest.approx(
        _true_overhead(1, 512)
    )


def test_prefill_rows_alone_fit_fixed_plus_per_token():
    fit = fit_overhead(_rows([(1, 128), (1, 1024)]))
    assert fit.per_prefill_seq_s == 0.0  # no decode rows: the fixed cost is the chunk's
    assert fit.fixed_s + fit.per_prefill_token_s * 1024 == pytest.approx(_true_overhead(1, 1024))
    assert fit.fixed_s + fit.per_prefill_token_s * 128 == pytest.approx(_true_overhead(1, 128))


def test_measured_prefill_steps_price_prefill_chunks(tmp_path: Path, rtx4090_setup):
    _, scenario = rtx4090_setup
    cm = build_cost_model(api.prepare(load_scenario(scenario), tmp_path)[0].replica())
    steps = []
    for b, q, kv in ((1, 1, 500), (4, 1, 800), (16, 1, 1000), (1, 128, 128), (1, 1024, 1024),
                     (1, 2048, 2048)):  # fmt: skip
        ops = cm.op_times_s(decode_batch(b, kv, q))
        kernels = sum(v for k, v in ops.items() if k != "overhead")
        steps.append({"batch_size": b, "query_len": q, "kv_len": kv,
                      "step_time_s": kernels + _true_overhead(b, q)})  # fmt: skip
    measured = tmp_path / "steps.csv"
    pd.DataFrame(steps).to_csv(measured, index=False)
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(measured),
                                       "--scenario", str(scenario)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert ("fit 3.000 ms + 20.0 µs per sequence + -1.000 ms per prefill chunk + 8.00 µs per "
            "prefill token") in result.output  # fmt: skip
    fitted = build_cost_model(api.prepare(load_scenario(scenario), tmp_path)[0].replica())
    # A mixed step: two decodes and a 300-token chunk over 200 cached tokens.
    mixed = fitted.op_times_s(_mixed())
    assert mixed["overhead"] == pytest.approx(3e-3 + 3 * 20e-6 - 1e-3 + 8e-6 * 300)
    # A pure decode step is unchanged by the prefill terms.
    assert fitted.op_times_s(decode_batch(8, 700))["overhead"] == pytest.approx(3e-3 + 8 * 20e-6)


def _mixed():
    from infsim.core.batch import batch_of

    return batch_of([(1, 899), (1, 450), (300, 200)])


def test_a_prefill_chunk_longer_than_its_context_is_refused(tmp_path: Path, rtx4090_setup):
    _, scenario = rtx4090_setup
    measured = tmp_path / "steps.csv"
    measured.write_text("batch_size,query_len,kv_len,step_time_s\n1,1,100,0.01\n1,512,256,0.1\n")
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(measured),
                                       "--scenario", str(scenario)])  # fmt: skip
    assert result.exit_code == 2
    assert "row 3: query_len (new tokens) exceeds kv_len" in result.output


@pytest.mark.parametrize(("fraction", "code"), [(0.98, 0), (0.90, 2)])
def test_a_prefill_step_slightly_faster_than_its_kernels_is_noise(
    tmp_path: Path, rtx4090_setup, fraction: float, code: int
):
    _, scenario = rtx4090_setup
    cm = build_cost_model(api.prepare(load_scenario(scenario), tmp_path)[0].replica())
    ops = cm.op_times_s(decode_batch(1, 2048, 2048))
    kernels = sum(v for k, v in ops.items() if k != "overhead")
    measured = tmp_path / "steps.csv"
    measured.write_text("batch_size,query_len,kv_len,step_time_s\n1,1,100,0.5\n4,1,100,0.6\n"
                        f"1,2048,2048,{kernels * fraction}\n")  # fmt: skip
    result = CliRunner().invoke(main, ["calibrate", "overhead", str(measured),
                                       "--scenario", str(scenario)])  # fmt: skip
    assert result.exit_code == code, result.output
