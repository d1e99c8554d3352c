"""The run report (infsim/report/html_run.py; issue 16, item 4) without a browser: the
sections that fit the run, the header, SLO lines on the latency tails, prediction
intervals and the cliff warning when summary.json has them, self-contained and
deterministic HTML, and damaged runs refused with the reader's InputError.

tests/report/test_run_report_browser.py loads the page in headless Chromium.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.report import plots
from infsim.report.html_run import run_report_html, write_run_report
from infsim.report.read import RunFiles, read_run

REPO = Path(__file__).resolve().parents[2]


def _run(root: Path, scenario: str, *extra: str) -> Path:
    out = root / Path(scenario).stem
    args = ["run", str(REPO / "scenarios" / scenario), "-o", str(out), "--quiet", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    return _run(
        tmp_path_factory.mktemp("single"),
        "quickstart.yaml",
        "--set",
        "workload.synthetic.num_requests=300",
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("fleet"), "autoscaling-burst.yaml")


@pytest.fixture(scope="module")
def disagg(tmp_path_factory) -> Path:
    return _run(
        tmp_path_factory.mktemp("disagg"),
        "disaggregated-1p1d.yaml",
        "--set",
        "workload.synthetic.num_requests=100",
    )


def _h2(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def _alts(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)"', page)


def test_single_replica_has_no_fleet_panels(single: Path) -> None:
    page = run_report_html(read_run(single))
    assert _h2(page) == ["Headline numbers", "Latency tails", "Over time", "Files"]
    over_time = next(a for a in _alts(page) if a.startswith("over time"))
    for panel in (
        "requests per second",
        "TTFT of the requests arriving",
        "requests on the engines (one replica",
        "KV cache in use",
    ):
        assert panel in over_time
    assert "replicas by state" not in page
    assert "billed rate" not in page
    assert "KV transfers" not in page


def test_fleet_has_pool_table_and_replica_states(fleet: Path) -> None:
    page = run_report_html(read_run(fleet))
    assert _h2(page) == ["Headline numbers", "Latency tails", "Fleet", "Over time", "Files"]
    over_time = next(a for a in _alts(page) if a.startswith("over time"))
    assert "pool h100: replicas by state" in over_time
    assert "billed rate, all pools" in over_time
    assert "autoscaled 1..6 (peak 6)" in page
    assert "on concurrency, target 24 per replica" in page
    assert "1 / 1 / 6 / 6" in page  # initial / min / max / peak
    assert "SLO attained by 62" in page  # the burst misses the SLO: said up front


def test_disaggregation_shows_the_transfer_queue_and_no_flat_pool_panels(disagg: Path) -> None:
    page = run_report_html(read_run(disagg))
    assert "Disaggregation" in _h2(page)
    assert "Fleet" in _h2(page)
    over_time = next(a for a in _alts(page) if a.startswith("over time"))
    assert "KV transfers prefill → decode" in over_time
    # two static pools of one replica each: the pool table says it; no constant panels
    assert "replicas by state" not in over_time
    assert "billed rate" not in over_time


def test_header_names_the_deployment_engine_calibration_and_slo(single: Path) -> None:
    page = run_report_html(read_run(single))
    head = page[: page.index("<h2>")]
    for text in (
        "infsim run: quickstart",
        "Llama-3.1-8B",
        "H100-SXM",
        "TP1",
        "max_num_seqs 256",
        "max_num_batched_tokens 8,192",
        "prefix caching on",
        "chunked prefill on",
        "speculative off",
        "async scheduling on",
        "roofline",
        "TTFT ≤ 500 ms, TPOT ≤ 50 ms",
    ):
        assert text in head, text
    assert "PP" not in head
    assert "EP" not in head
    for text in ("$2.49 per hour", "per M output tokens", "req/s within SLO", "p99"):
        assert text in page, text


def test_parallelism_and_speculation_named_when_set(tmp_path: Path) -> None:
    run = _run(tmp_path, "speculative-eagle.yaml", "--set", "workload.synthetic.num_requests=40")
    head = run_report_html(read_run(run)).split("<h2>")[0]
    assert "speculative eagle k=3" in head
    assert "h100-vllm-0.19" in head  # the calibration table used
    resolved = read_run(run)
    text = resolved.resolved_scenario.replace("pipeline_parallel: 1", "pipeline_parallel: 2")
    head = run_report_html(dataclasses.replace(resolved, resolved_scenario=text)).split("<h2>")[0]
    assert "TP1 PP2" in head


class _Figures:
    """Captures the figures the report draws instead of encoding them."""

    def __init__(self) -> None:
        self.axes: list = []

    def __call__(self, fig, alt: str) -> str:
        self.axes.extend(fig.axes)
        plots.plt().close(fig)
        return f'<img alt="{alt}" src="data:image/png;base64,">'


def _slo_lines(monkeypatch, run: RunFiles) -> dict[str, list[float]]:
    figures = _Figures()
    monkeypatch.setattr(plots, "img", figures)
    run_report_html(run)
    out: dict[str, list[float]] = {}
    for ax in figures.axes:
        label = ax.get_xlabel()
        if label.endswith("(ms)"):
            out[label] = [
                float(line.get_xdata()[0])
                for line in ax.get_lines()
                if str(line.get_label()).startswith("SLO")
            ]
    return out


def test_latency_tails_draw_the_slo_lines_in_ms(single: Path, monkeypatch) -> None:
    lines = _slo_lines(monkeypatch, read_run(single))
    assert lines == {"TTFT (ms)": [500.0], "TPOT (ms)": [50.0], "E2E (ms)": [], "ITL (ms)": []}


def test_no_slo_no_lines(single: Path, monkeypatch) -> None:
    run = read_run(single)
    text = run.resolved_scenario.replace("ttft_s: 0.5", "ttft_s: null").replace(
        "tpot_s: 0.05", "tpot_s: null"
    )
    run = dataclasses.replace(run, resolved_scenario=text)
    assert all(v == [] for v in _slo_lines(monkeypatch, run).values())
    page = run_report_html(run)
    assert "none set" in page
    assert "SLO attained by" not in page


def test_ccdf_is_downsampled_for_big_samples() -> None:
    values = np.random.default_rng(1).lognormal(size=200_000)
    x, y = plots.ccdf_points(values)
    assert x.size <= plots.MAX_CURVE_POINTS
    assert y[0] == 1.0
    assert y[-1] == pytest.approx(1 / values.size)
    assert x[-1] == values.max()
    assert np.all(np.diff(x) >= 0)


def _with_summary(run: RunFiles, **sections) -> RunFiles:
    summary = copy.deepcopy(run.summary)
    summary.update(sections)
    return dataclasses.replace(run, summary=summary)


def test_intervals_shown_beside_the_values(single: Path) -> None:
    run = read_run(single)
    p99 = run.summary["latency_s"]["ttft"]["p99"]
    leaf = {"level": 0.9, "num_replications": 20}
    intervals = {
        "latency_s": {
            "ttft": {"p99": {"lo": p99 * 0.8, "hi": p99 * 1.25, **leaf}},
            "e2e": {"p50": {"lo": 1.2345, "hi": 2.5, **leaf}},
        },
        "cost": {"usd_per_hour": {"lo": 2.0, "hi": 3.0, **leaf}},
        "level": 0.9,
        "num_replications": 20,
    }
    page = run_report_html(_with_summary(run, intervals=intervals))
    ms = p99 * 1e3
    expected = f"{plots.fmt_ms(ms)} [{plots.fmt_ms(ms * 0.8).split()[0]}, "
    assert expected in page, expected
    assert "s [1.23, 2.5]" in page  # seconds stay seconds
    assert "$2.49 [2.00, 3.00] per hour" in page
    assert "90% prediction interval for one more run, from 20 replications" in page
    assert "prediction interval" not in run_report_html(run)


def test_cliff_warning_is_prominent(single: Path) -> None:
    run = read_run(single)
    sens = {
        "step": 0.1,
        "cliff_ratio": 2.0,
        "cliff": True,
        "warnings": ["TTFT p99 changes 8.02× when step cost is +10%"],
    }
    page = run_report_html(_with_summary(run, sensitivity=sens))
    warn = page[: page.index("<h2>Headline numbers")]  # above the numbers
    assert "class=warn" in warn
    assert "Near a cliff" in warn
    assert "TTFT p99 changes 8.02× when step cost is +10%" in warn
    calm = run_report_html(_with_summary(run, sensitivity={**sens, "cliff": False, "warnings": []}))
    assert "Near a cliff" not in calm
    assert "Cliff indicator: no p99" in calm


def test_page_is_self_contained_and_images_are_png(single: Path) -> None:
    page = run_report_html(read_run(single))
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page
    assert "url(" not in page
    sources = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(sources) == len(_alts(page)) >= 2
    for data in sources:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")


def test_same_run_same_bytes(single: Path, tmp_path: Path) -> None:
    first = write_run_report(single).read_bytes()
    again = write_run_report(single).read_bytes()
    assert first == again
    other = tmp_path / "copy"
    other.mkdir()
    for path in single.iterdir():
        if path.name != "report.html":
            (other / path.name).write_bytes(path.read_bytes())
    assert write_run_report(other).read_bytes() == first  # the path does not leak in


def test_infsim_report_writes_the_run_report(single: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", str(single), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<h2>Headline numbers</h2>" in page
    assert "<h2>Latency tails</h2>" in page


def test_damaged_run_is_an_input_error(single: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in single.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    data = (broken / "timeline.parquet").read_bytes()
    (broken / "timeline.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a complete infsim run"):
        write_run_report(broken)
    assert (
        not (broken / "report.html").exists()
        or (broken / "report.html").read_bytes() == (single / "report.html").read_bytes()
    )
    result = CliRunner().invoke(main, ["report", str(broken)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_failures_named_and_marked(tmp_path: Path) -> None:
    run = _run(tmp_path, "spot-failures.yaml", "--set", "workload.synthetic.num_requests=1500")
    page = run_report_html(read_run(run))
    facts = read_run(run).summary["failures"]
    assert f"{facts['num_failures']:,} replica failures" in page
    assert f"{facts['num_preemptions']:,} spot preemptions" in page
    assert f"{facts['requests_retried']:,} requests retried" in page
    assert "Fleet" in _h2(page)  # a static pool that loses replicas is shown over time
    over_time = next(a for a in _alts(page) if a.startswith("over time"))
    assert "pool h100-spot: replicas by state" in over_time
