"""`infsim run` of the speculative scenario: the summary section, the timeline columns,
the console line, and exit code 2 for a bad section."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from infsim.cli import main

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "speculative-eagle.yaml"
SMALL = ["--set", "workload.synthetic.num_requests=40"]
KEYS = {
    "method", "num_speculative_tokens", "acceptance", "disable_by_batch_size",
    "mean_accepted_tokens_per_verify", "expected_accepted_tokens_per_verify",
    "draft_acceptance_rate", "acceptance_rate_per_position", "num_verifies",
    "num_draft_tokens", "num_accepted_tokens", "num_steps_speculating", "num_steps_disabled",
    "fraction_steps_disabled", "draft_time_s", "draft_time_share",
}  # fmt: skip


def test_run_writes_speculative_section_and_columns(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(SCENARIO), "-o", str(tmp_path), *SMALL])
    assert result.exit_code == 0, result.output
    assert "tokens per verify step" in result.output
    spec = json.loads((tmp_path / "summary.json").read_text())["speculative"]
    assert set(spec) == KEYS
    assert spec["method"] == "eagle"
    assert len(spec["acceptance_rate_per_position"]) == 3
    assert 0 < spec["draft_time_share"] < 1
    timeline = pq.read_table(tmp_path / "timeline.parquet")
    drafts = timeline.column("num_draft_tokens").to_pylist()
    accepted = timeline.column("num_accepted_tokens").to_pylist()
    assert sum(drafts) == spec["num_draft_tokens"]
    assert sum(accepted) == spec["num_accepted_tokens"]
    assert all(0 <= a <= d for a, d in zip(accepted, drafts, strict=True))


def test_run_without_speculation_has_no_section(tmp_path: Path) -> None:
    args = ["run", str(SCENARIO), "-o", str(tmp_path), *SMALL, "--set",
            "engine.speculative=null", "--quiet"]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    assert "speculative" not in json.loads((tmp_path / "summary.json").read_text())
    assert set(pq.read_table(tmp_path / "timeline.parquet").column("num_draft_tokens")
               .to_pylist()) == {0}  # fmt: skip


def test_bad_section_exits_2_naming_the_field(tmp_path: Path) -> None:
    args = ["run", str(SCENARIO), "-o", str(tmp_path), "--set",
            "engine.speculative.acceptance.rate=1.5"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "engine.speculative.acceptance.constant.rate" in result.output
    assert "Traceback" not in result.output
