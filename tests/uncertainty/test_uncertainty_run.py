"""`infsim run --intervals` end to end: the exact keys of summary.json's `intervals` and
`sensitivity`, determinism, bad options, the cliff warning on the near-saturation scenario
and not on the quickstart, and a queueing oracle (M/D/1: the interval for mean E2E covers
the Pollaczek-Khinchine value)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from infsim import api
from infsim.cli import main
from infsim.scenario.load import validate_scenario
from infsim.uncertainty.predict import IntervalOptions, uncertainty_sections

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
TINY = ["--set", "workload.synthetic.num_requests=60", "--executor", "serial"]
STATS = {"mean", "p50", "p90", "p95", "p99"}
LEAF = {"lo", "hi", "level", "num_replications"}


def _run(tmp: Path, *args: str) -> tuple[int, str, dict]:
    result = CliRunner().invoke(main, ["run", str(QUICKSTART), "-o", str(tmp), *TINY, *args])
    summary = json.loads((tmp / "summary.json").read_text()) if result.exit_code == 0 else {}
    return result.exit_code, result.output, summary


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    code, output, summary = _run(tmp_path_factory.mktemp("i3"), "--intervals", "3")
    assert code == 0, output
    return output, summary


def test_intervals_mirror_the_summary_keys(three: tuple[str, dict]) -> None:
    _, summary = three
    iv = summary["intervals"]
    assert set(iv["latency_s"]) == {"ttft", "tpot", "itl", "e2e"}
    for metric, stats in iv["latency_s"].items():
        assert set(stats) == STATS == set(summary["latency_s"][metric])
        for leaf in stats.values():
            assert set(leaf) == LEAF
            assert leaf["level"] == 0.9
            assert leaf["num_replications"] == 3
            assert 0 < leaf["lo"] <= leaf["hi"]
    assert set(iv["throughput"]) == set(summary["throughput"])
    assert {"usd_per_hour", "usd_per_million_output_tokens", "usd_total", "gpu_hours"} <= set(
        iv["cost"]
    )
    assert set(iv["sources"]) == {"workload", "speed_noise", "cost_model", "model_error", "drift"}
    assert all(s["enabled"] and s["method"] for s in iv["sources"].values())
    assert (iv["level"], iv["num_replications"], iv["num_failed"]) == (0.9, 3, 0)
    sens = summary["sensitivity"]  # on with --intervals
    assert set(sens) == {"step", "cliff_ratio", "step_cost", "arrival_rate", "cliff", "warnings"}
    entry = {"p99_s", "p99_minus_s", "p99_plus_s", "ratio_minus", "ratio_plus", "elasticity"}
    assert set(sens["step_cost"]["ttft"]) == entry


def test_console_shows_p99_with_its_interval(three: tuple[str, dict]) -> None:
    output, summary = three
    leaf = summary["intervals"]["latency_s"]["e2e"]["p99"]
    value = summary["latency_s"]["e2e"]["p99"]
    assert f"p99 E2E {value:.2f} s [{leaf['lo']:.2f}, {leaf['hi']:.2f}]" in output


def test_same_seed_and_n_give_identical_intervals(three: tuple[str, dict], tmp_path: Path) -> None:
    code, _, again = _run(tmp_path, "--intervals", "3")
    assert code == 0
    assert again["intervals"] == three[1]["intervals"]
    assert again["sensitivity"] == three[1]["sensitivity"]


def test_without_the_flag_there_is_no_interval(tmp_path: Path) -> None:
    code, _, summary = _run(tmp_path)
    assert code == 0
    assert "intervals" not in summary
    assert "sensitivity" not in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--intervals", "1"], "--intervals 1: the number of replications must be 0"),
        (["--intervals", "3", "--interval-level", "1.5"], "--interval-level 1.5: allowed"),
        (["--intervals", "3", "--interval-sources", "noise"], "unknown source 'noise'"),
        (["--intervals", "3", "--jobs", "0"], "--jobs 0: allowed 1 to"),
    ],
)
def test_bad_options_are_one_paragraph_exit_2(tmp_path: Path, args, message) -> None:
    result = CliRunner().invoke(main, ["run", str(QUICKSTART), "-o", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cliff_warning_near_saturation_and_not_at_the_quickstart(tmp_path: Path) -> None:
    near = CliRunner().invoke(main, ["run", str(REPO / "scenarios" / "near-saturation.yaml"),
                                     "-o", str(tmp_path / "n"), "--sensitivity",
                                     "--executor", "serial"])  # fmt: skip
    assert near.exit_code == 0, near.output
    assert "warning: this configuration is near a cliff" in near.output
    assert "TTFT p99 changes" in near.output
    calm = CliRunner().invoke(main, ["run", str(QUICKSTART), "-o", str(tmp_path / "q"),
                                     "--sensitivity", "--executor", "serial"])  # fmt: skip
    assert calm.exit_code == 0, calm.output
    assert "near a cliff" not in calm.output
    assert "warning:" not in calm.output
    summary = json.loads((tmp_path / "q" / "summary.json").read_text())
    assert summary["sensitivity"]["cliff"] is False
    assert 0.5 < summary["sensitivity"]["step_cost"]["e2e"]["elasticity"] < 2


def test_md1_queue_interval_covers_the_pollaczek_khinchine_mean() -> None:
    """One request at a time (max_num_seqs 1) with fixed lengths: a deterministic service
    time S, Poisson arrivals at ρ = 0.6: M/D/1, mean sojourn S + ρS / (2(1 − ρ)). The
    workload-only 90 % interval of mean E2E over 8 replications must hold it (and the
    point estimate must be near it)."""

    def scenario(rate: float, n: int):
        raw = {"name": "md1", "seed": 3, "model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm"},
               "engine": {"max_num_seqs": 1},
               "workload": {"synthetic": {"num_requests": n,
                            "arrival": {"kind": "poisson", "rate_per_s": rate},
                            "prompt_tokens": {"kind": "fixed", "value": 64},
                            "output_tokens": {"kind": "fixed", "value": 32}}}}  # fmt: skip
        return validate_scenario(raw, "md1")

    service_s = float(api.run(scenario(0.01, 3), ".").requests.column("e2e_s").to_numpy().min())
    rho = 0.6
    spec = scenario(rho / service_s, 500)
    resolved, trace = api.prepare(spec, ".")
    base = api.run_resolved(resolved, trace).summary
    out = uncertainty_sections(spec, resolved, base, IntervalOptions(8, 0.9, ("workload",)))
    leaf = out["intervals"]["latency_s"]["e2e"]["mean"]
    analytic = service_s + rho * service_s / (2 * (1 - rho))
    assert leaf["lo"] <= analytic <= leaf["hi"]
    assert base["latency_s"]["e2e"]["mean"] == pytest.approx(analytic, rel=0.15)
    assert leaf["hi"] / leaf["lo"] < 1.5  # informative, not uselessly wide


def test_replication_keys_are_stable_and_distinct() -> None:
    from infsim.scenario.load import load_scenario
    from infsim.uncertainty.replicate import ReplicationTask, derived_seed
    from infsim.uncertainty.sources import SOURCES, class_sigmas

    spec = load_scenario(QUICKSTART)
    sig = class_sigmas(None)
    a = ReplicationTask(0, spec, "scenarios", "q", SOURCES, sig)
    assert a.key == ReplicationTask(0, spec, "scenarios", "q", SOURCES, sig).key
    assert a.key != ReplicationTask(1, spec, "scenarios", "q", SOURCES, sig).key
    assert a.key != ReplicationTask(0, spec, "scenarios", "q", SOURCES, sig, parent_key="p").key
    assert derived_seed(1, 0, "workload") != derived_seed(1, 0, "cost_model")
    assert derived_seed(1, 0, "workload") == derived_seed(1, 0, "workload")
