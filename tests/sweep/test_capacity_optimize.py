"""Searches on real (small) scenarios: capacity by bisection, Optuna optimize by seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from infsim.errors import InputError
from infsim.sweep.capacity import find_capacity
from infsim.sweep.job import load_base
from infsim.sweep.optimize import OptimizeSettings, optimize
from infsim.sweep.runner import Outcome
from infsim.sweep.search import SLOTarget
from infsim.sweep.spec import parse_sweep
from infsim.sweep.store import ResultStore
from tests.sweep.conftest import BASE

TARGET = SLOTarget(ttft_p99_s=0.4, tpot_p99_s=0.04)


@pytest.fixture
def small(write_yaml) -> Path:
    raw = {**BASE, "workload": {"synthetic": {**BASE["workload"]["synthetic"],
                                              "num_requests": 300}}}  # fmt: skip
    return write_yaml("small.yaml", raw)


def test_capacity_on_a_real_scenario_meets_below_and_misses_above(small: Path):
    ctx, _ = load_base(small)
    store = ResultStore(small.parent / "cap")
    report = find_capacity(ctx, TARGET, store, rel_tol=0.05)
    r = report.result
    assert 0 < r.lower < r.upper
    assert not r.capped
    assert r.upper - r.lower <= 0.05 * r.upper  # the stated tolerance
    by_scale = {p["rate_scale"]: p["met"] for p in report.probes}
    assert by_scale[r.lower]
    assert not by_scale[r.upper]
    # monotone on the probes: everything met lies below everything missed
    assert max(s for s, ok in by_scale.items() if ok) < min(
        s for s, ok in by_scale.items() if not ok
    )
    assert report.capacity_rate_per_s == pytest.approx(r.scale * report.base_rate_per_s)
    assert store.manifest()["result"]["rate_scale"] == r.scale
    # resumable: the same search again runs nothing new
    before = len(store.stored_keys())
    again = find_capacity(ctx, TARGET, store, rel_tol=0.05)
    assert again.result == r
    assert len(store.stored_keys()) == before


def test_capacity_refuses_time_scale(write_yaml):
    raw = {**BASE, "workload": {**BASE["workload"], "time_scale": 2.0}}
    ctx, _ = load_base(write_yaml("ts.yaml", raw))
    with pytest.raises(InputError, match=r"workload\.time_scale"):
        find_capacity(ctx, TARGET, ResultStore(ctx.base_dir / "cap"))


SPACE = {
    "axes": {
        "hardware.gpu": ["h100-sxm", "a100-80gb", "l40s"],
        "deployment.tensor_parallel": [1, 2, 4],
        "engine.max_num_seqs": [8, 32, 128],
    }
}


def _optimize(small: Path, out: str, seed: int, batch_size: int = 1):
    ctx, _ = load_base(small)
    store = ResultStore(small.parent / out)
    settings = OptimizeSettings(num_trials=12, seed=seed, batch_size=batch_size)
    return optimize(ctx, parse_sweep(SPACE, "space.yaml"), TARGET, store, settings), store


def test_optimize_is_reproducible_by_seed_and_its_best_is_feasible_and_cheapest(small: Path):
    first, store = _optimize(small, "a", seed=7)
    again, _ = _optimize(small, "b", seed=7)
    other, _ = _optimize(small, "c", seed=8)

    def trail(report):
        return [(t.overrides, t.state, t.objective) for t in report.trials]

    assert trail(first) == trail(again)
    assert trail(first) != trail(other)
    assert first.best is not None
    assert first.best.state == "ok"
    feasible = [t.objective for t in first.trials if t.state == "ok"]
    assert first.best.objective == min(feasible)
    assert TARGET.met(store.read(first.best.key))
    # the Pareto front is made of evaluated points, cheapest first, latency falling
    lats = [store.read(t.key)["latency_s.e2e.p99"] for t in first.pareto]
    assert [t.objective for t in first.pareto] == sorted(t.objective for t in first.pareto)
    assert lats == sorted(lats, reverse=True)


def test_optimize_in_batches_is_reproducible_too(small: Path):
    a, _ = _optimize(small, "a", seed=1, batch_size=3)
    b, _ = _optimize(small, "b", seed=1, batch_size=3)
    assert [t.overrides for t in a.trials] == [t.overrides for t in b.trials]


def test_optimize_rejects_an_unknown_objective(small: Path):
    ctx, _ = load_base(small)
    settings = OptimizeSettings(objective="cost.usd_per_hours", num_trials=2)
    with pytest.raises(InputError, match=r"did you mean 'cost\.usd_per_hour'"):
        optimize(ctx, parse_sweep(SPACE, "s"), TARGET, ResultStore(small.parent / "x"), settings)


def test_outcome_counts():
    assert Outcome(executed=["a", "b"]).num_executed == 2


def test_capacity_with_a_scenario_rate_scale_reports_the_rate_scale_the_probes_ran(
    write_yaml,
):
    """Issue 16: with workload.rate_scale 1.25 the probes ran at 1.25 × the search scale;
    the manifest's result (read by the report's capacity line) says the same values."""
    synth = {**BASE["workload"]["synthetic"], "num_requests": 300}
    raw = {**BASE, "workload": {"synthetic": synth, "rate_scale": 1.25}}
    ctx, _ = load_base(write_yaml("scaled.yaml", raw))
    store = ResultStore(ctx.base_dir / "cap-scaled")
    report = find_capacity(ctx, TARGET, store, rel_tol=0.05)
    r = report.result
    result = store.manifest()["result"]
    probed = {p["rate_scale"]: p["met"] for p in report.probes}
    assert result["lower"] == pytest.approx(1.25 * r.lower)
    assert result["upper"] == pytest.approx(1.25 * r.upper)
    assert probed[result["lower"]]
    assert not probed[result["upper"]]


def test_optimize_evaluates_a_small_space_exhaustively(small: Path):
    """Issue 16: a budget that covers the space tries every configuration exactly once."""
    space = {"axes": {"deployment.tensor_parallel": [1, 2], "engine.max_num_seqs": [8, 64]}}
    ctx, _ = load_base(small)
    store = ResultStore(small.parent / "exhaustive")
    settings = OptimizeSettings(num_trials=10, seed=3)
    report = optimize(ctx, parse_sweep(space, "space.yaml"), TARGET, store, settings)
    configs = [tuple(sorted(t.overrides.items())) for t in report.trials]
    assert len(configs) == 4
    assert len(set(configs)) == 4
    feasible = [t for t in report.trials if t.state == "ok"]
    if feasible:
        assert report.best.objective == min(t.objective for t in feasible)


def test_optimize_counts_distinct_configurations_against_the_budget(small: Path):
    report, _ = _optimize(small, "distinct", seed=1)
    configs = [tuple(sorted(t.overrides.items())) for t in report.trials]
    assert len(configs) == 12
    assert len(set(configs)) == 12  # a configuration proposed again was not counted


def test_optimize_without_optuna_says_how_to_install_it(small: Path, monkeypatch) -> None:
    # optuna is an optional dependency (pip install 'infsim[optimize]'): without it, one
    # clear error (exit 2 from the CLI), not an ImportError traceback.
    import sys

    from infsim.errors import InputError

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna → ImportError
    with pytest.raises(InputError, match=r"pip install 'infsim\[optimize\]'"):
        _optimize(small, "a", seed=7)
